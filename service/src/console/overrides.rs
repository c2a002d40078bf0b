//! Overrides under review, the default limit, and the reconciler's runs.
//!
//! Reads the policy repository at the approved ref as the proposals do, and asks the
//! engine's `review` where each override stands (in the Workspace's time zone, at the
//! service's clock) and which people's overrides drifted (renewed back to back, or
//! in force longer than the review period, found through the repository's history).
//! Acting on a finding is a proposal like any other — a branch with one commit, the
//! tree validated as CI would, the plan against the approved ref — made with the
//! engine's `edit`: letting an override lapse removes its file (or sets its expiry to
//! today), moving a person into a group adds them to the group's `members:` and
//! removes the override. The default limit is proposed the way a group's limit is.
//! The runs list reads the run reports the reconciler already sends.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::edit::{
    Changed, GroupChange, add_member, changed_default, edit_default, effective_default, expire_override,
};
use budgit_engine::load::load_sources;
use budgit_engine::review::{self, OverrideView, Status};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::proposals::{
    Made, Proposing, RunOut, blocking, branch_part, changed_json, check_change, commit_edits, edit_error,
    git_error, in_repo, no_repo, open_repo, propose_with, reason_of, run_json, unprocessable,
};
use crate::api::{ListQuery, MAX_PAGE, json_body, path_param};
use crate::error::{ApiError, ApiResult};
use crate::{App, auth::Principal};

/// The longest `expiring_within` filter, in days.
const MAX_WITHIN_DAYS: i64 = 3660;

/// An override as the API lists it: the engine's view, its file from the repository root,
/// and the commit it was read at.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "OverrideRow", transform = file_from_root)]
pub(crate) struct OverrideRow {
    #[serde(flatten)]
    view: OverrideView,
    /// The approved ref's commit the override was read at.
    commit: String,
}

impl OverrideRow {
    fn new(view: &OverrideView, dir: &str, commit: &str) -> OverrideRow {
        let mut view = view.clone();
        view.file = in_repo(dir, &view.file);
        OverrideRow { view, commit: commit.to_string() }
    }
}

/// The engine says where a file is from the policy directory; the service answers it
/// from the repository root, and its schema says so.
fn file_from_root(schema: &mut schemars::Schema) {
    if let Some(file) =
        schema.get_mut("properties").and_then(|p| p.get_mut("file")).and_then(Value::as_object_mut)
    {
        file.insert("description".into(), json!("the file, from the repository root"));
    }
}

/// The drift review as the API answers it: the engine's review, each finding's file
/// from the repository root, and the ref it was read at.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "OverrideReview")]
pub(crate) struct ReviewOut {
    #[serde(flatten)]
    review: review::Review,
    /// The approved ref the review read.
    #[serde(rename = "ref")]
    reference: String,
}

/// The overrides at the approved ref, at `now`: (rows, policy directory, commit).
fn overrides_at(
    repo: &std::path::Path,
    rev: &str,
    now: DateTime<Utc>,
) -> ApiResult<(Vec<OverrideView>, String, String)> {
    let (git, dir) = open_repo(repo, rev)?;
    let read = git.read_policies(rev, &dir).map_err(git_error)?;
    let (set, _) = load_sources(read.sources);
    Ok((review::list(&set, now), dir, read.commit.sha))
}

/// `GET /v1/overrides` (admin): every override at the approved ref with its status and
/// days left, soonest expiry first; filters `status`, `expiring_within` (days), `user`;
/// `after` is the name of the last override of the previous page.
pub async fn list(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let ListQuery { q, limit, after } = ListQuery::<String>::parse(raw.as_deref(), 100, MAX_PAGE)?;
    let status = match q.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request("overrides/bad-status", "`status` is `active`, `upcoming` or `expired`")
        })?),
    };
    let within = q.int("expiring_within")?;
    if within.is_some_and(|d| !(0..=MAX_WITHIN_DAYS).contains(&d)) {
        return Err(ApiError::bad_request(
            "overrides/bad-within",
            format!("`expiring_within` is a number of days from 0 to {MAX_WITHIN_DAYS}"),
        ));
    }
    let user = crate::api::canonical_filter(q.get("user").filter(|u| !u.is_empty()))?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let rev = app.approved_ref.clone();
    let now = Utc::now();
    let (views, dir, commit) = blocking(move || overrides_at(&repo, &rev, now)).await?;
    let kept: Vec<&OverrideView> = views
        .iter()
        .filter(|v| status.is_none_or(|s| v.status == s))
        // expiring within N days: still in force or upcoming, and ending in at most N days
        .filter(|v| within.is_none_or(|d| v.status != Status::Expired && v.days_left <= d))
        .filter(|v| {
            user.as_deref().is_none_or(|u| {
                budgit_engine::identity::canonical(&v.user).is_ok_and(|c| c.eq_ignore_ascii_case(u))
            })
        })
        .collect();
    let start = match &after {
        Some(name) => kept.iter().position(|v| &v.name == name).map_or(kept.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<OverrideRow> = kept
        .iter()
        .skip(start)
        .take(limit.saturating_add(1))
        .map(|v| OverrideRow::new(v, &dir, &commit))
        .collect();
    Ok(crate::api::Page::cut(page, limit, |r| r.view.name.clone()).into_response())
}

/// `GET /v1/overrides/review` (admin): the drift review of the approved ref at the service's clock.
pub async fn review(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let rev = app.approved_ref.clone();
    let now = Utc::now();
    let (found, dir) = blocking(move || {
        let (git, dir) = open_repo(&repo, &rev)?;
        let found = review::review(&git, &rev, &dir, now).map_err(|e| match e {
            review::ReviewError::Git(g) => git_error(g),
            other => super::proposals::worker_error(&other),
        })?;
        Ok((found, dir))
    })
    .await?;
    let mut found = found;
    for finding in &mut found.findings {
        finding.file = in_repo(&dir, &finding.file);
    }
    Ok(axum::Json(ReviewOut { review: found, reference: app.approved_ref.clone() }).into_response())
}

// ---------------------------------------------------------------------------
// Proposals on an override

/// What a proposal does to an override.
#[derive(Debug, Clone)]
enum Action {
    /// Remove its file.
    Remove,
    /// Set its expiry to today (in the workspace's time zone).
    Expire,
    /// Add its person to a group's `members:` and remove it.
    Move { group: String },
}

/// The body of `POST /v1/overrides/{name}/lapse`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LapseIn")]
pub(crate) struct LapseIn {
    /// Why, 1 to 2000 characters (the commit message holds it).
    #[schemars(length(min = 1, max = crate::api::MAX_REASON), pattern(r"\S"))]
    reason: String,
    /// `remove` (the default) or `expire`.
    #[serde(default)]
    #[schemars(extend("enum" = ["remove", "expire"]))]
    how: Option<String>,
}

/// The body of `POST /v1/overrides/{name}/move`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MoveIn")]
pub(crate) struct MoveIn {
    #[schemars(length(min = 1, max = crate::api::MAX_NAME), pattern(crate::api::NAME_PATTERN))]
    group: String,
    /// Why, 1 to 2000 characters (the commit message holds it).
    #[schemars(length(min = 1, max = crate::api::MAX_REASON), pattern(r"\S"))]
    reason: String,
}

/// Everything the blocking part of an override proposal needs.
struct OverrideJob {
    name: String,
    action: Action,
    reason: String,
}

fn propose_override(job: OverrideJob, p: Proposing) -> ApiResult<Made> {
    let OverrideJob { name, action, reason } = job;
    let Proposing { repo, approved_ref, actor, people, now } = p;
    let (git, dir) = open_repo(&repo, &approved_ref)?;
    let read = git.read_policies(&approved_ref, &dir).map_err(git_error)?;
    let base_commit = read.commit.sha.clone();
    let (base, _) = load_sources(read.sources.clone());
    let Some(found) = base.overrides.iter().find(|o| o.doc.name == name) else {
        return Err(ApiError::not_found(
            "overrides/unknown",
            format!("no override `{}` at `{approved_ref}`", crate::api::shorten(&name)),
        ));
    };
    let doc = found.doc.clone();
    let file = found.file.clone();
    let text_of = |path: &str| read.sources.iter().find(|s| &*s.path == path).map(|s| s.text.clone());
    let view = review::list(&base, now).into_iter().find(|v| v.name == name);
    let status = view.as_ref().map_or(Status::Active, |v| v.status);
    if status == Status::Expired {
        return Err(unprocessable(
            "overrides/expired",
            format!("override `{name}` has already expired: nothing to propose"),
        ));
    }
    // an override sharing its file with other documents cannot be removed by removing the file
    let alone = review::override_file(&base, &name).is_some_and(|(_, alone)| alone);
    let not_alone = || {
        unprocessable(
            "proposals/not-editable",
            format!("`{file}` holds more than override `{name}`: change the file by hand"),
        )
    };
    // the new texts by path (relative to the policy directory); `None` removes the file
    let mut edits: BTreeMap<String, Option<String>> = BTreeMap::new();
    let (title, kind, branch_kind) = match &action {
        Action::Remove => {
            if !alone {
                return Err(not_alone());
            }
            edits.insert(file.to_string(), None);
            (format!("let override `{name}` lapse (remove it)"), "lapse", "lapse")
        }
        Action::Expire => {
            if status == Status::Upcoming {
                return Err(unprocessable(
                    "overrides/upcoming",
                    format!("override `{name}` has not started: remove it instead"),
                ));
            }
            let today = budgit_engine::request::today(&base, now);
            let text = text_of(&file).ok_or_else(not_alone)?;
            let edited = expire_override(&file, &text, &name, today).map_err(edit_error)?;
            edits.insert(file.to_string(), Some(edited));
            (format!("let override `{name}` lapse (expires {today})"), "lapse", "lapse")
        }
        Action::Move { group } => {
            if !alone {
                return Err(not_alone());
            }
            let Some(g) = base.groups.iter().find(|g| &g.doc.name == group) else {
                return Err(ApiError::not_found(
                    "groups/unknown",
                    format!("no group `{}` at `{approved_ref}`", crate::api::shorten(group)),
                ));
            };
            let text = text_of(&g.file).ok_or_else(not_alone)?;
            let user = budgit_engine::identity::canonical(&doc.user)
                .map_or_else(|_| doc.user.clone(), |c| c.into_owned());
            let edited = add_member(&g.file, &text, group, &user).map_err(edit_error)?;
            edits.insert(g.file.to_string(), Some(edited));
            edits.insert(file.to_string(), None);
            (format!("move {user} into group `{group}` (override `{name}` removed)"), "move", "move")
        }
    };
    let message = format!(
        "Propose to {title}\n\n{}\n\nOverride `{name}` of {} in `{}`.\n\nProposed in the console by {actor}.\n",
        reason.trim(),
        doc.user,
        in_repo(&dir, &file),
    );
    let branch = git.free_branch(&format!(
        "budgit/{branch_kind}/{}-{}",
        branch_part(&name),
        now.format("%Y%m%d-%H%M%S")
    ));
    let (commit, (plan_markdown, plan_summary, plan_digest)) =
        commit_edits(&git, &read, &dir, &edits, &branch, &message, (&approved_ref, &people, now))?;
    let files: Vec<Value> = edits
        .iter()
        .map(|(p, t)| json!({ "file": in_repo(&dir, p), "change": if t.is_some() { "edit" } else { "remove" } }))
        .collect();
    Ok(Made {
        kind,
        subject: name.clone(),
        request_id: None,
        branch,
        base_ref: approved_ref,
        base_commit,
        commit,
        file: in_repo(&dir, &file),
        title: format!("{}: {title}", doc.user),
        reason,
        changes: json!([{
            "field": "override",
            "name": name,
            "user": doc.user,
            "action": match &action { Action::Remove => "remove", Action::Expire => "expire", Action::Move { .. } => "move" },
            "group": match &action { Action::Move { group } => Some(group.clone()), _ => None },
            "files": files,
        }]),
        plan_markdown,
        plan_summary,
        plan_digest,
    })
}

async fn override_proposal(
    app: App,
    who: Principal,
    name: String,
    action: Action,
    reason: String,
) -> ApiResult<Response> {
    crate::api::check_name("override", &name)?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let job = OverrideJob { name, action, reason };
    propose_with(&app, &who, repo, move |p| propose_override(job, p)).await
}

/// `POST /v1/overrides/{name}/lapse` (admin): a proposal removing the override
/// (`how: remove`, the default) or setting its expiry to today (`how: expire`).
pub async fn lapse(
    State(app): State<App>,
    who: Principal,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let name = path_param(name)?;
    let req: LapseIn = json_body(body)?;
    let action = match req.how.as_deref() {
        None | Some("remove") => Action::Remove,
        Some("expire") => Action::Expire,
        Some(_) => return Err(ApiError::bad_request("overrides/bad-how", "`how` is `remove` or `expire`")),
    };
    let reason = reason_of(&req.reason)?;
    override_proposal(app, who, name, action, reason).await
}

/// `POST /v1/overrides/{name}/move` (admin): a proposal adding the override's person to
/// a group's `members:` and removing the override.
pub async fn move_to_group(
    State(app): State<App>,
    who: Principal,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let name = path_param(name)?;
    let req: MoveIn = json_body(body)?;
    crate::api::check_name("group", &req.group)?;
    let reason = reason_of(&req.reason)?;
    override_proposal(app, who, name, Action::Move { group: req.group }, reason).await
}

// ---------------------------------------------------------------------------
// The default limit

/// `GET /v1/workspace/default` (admin): the Workspace's default limit at the approved
/// ref, with its period, file and line.
pub async fn default_limit(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let rev = app.approved_ref.clone();
    let answer = blocking(move || {
        let (git, dir) = open_repo(&repo, &rev)?;
        let read = git.read_policies(&rev, &dir).map_err(git_error)?;
        let (set, _) = load_sources(read.sources);
        let Some(w) = set.workspace() else {
            return Err(ApiError::not_found(
                "workspace/none",
                format!("the policies at `{rev}` have no single Workspace document"),
            ));
        };
        let d = &w.doc;
        Ok(DefaultLimitOut {
            workspace: d.name.clone(),
            credits: d.default.credits,
            products: d.default.products.clone(),
            models: d.default.models.clone(),
            period: d.period,
            timezone: d.timezone.clone(),
            enforcement: d.enforcement,
            overrides: d.overrides.clone(),
            file: in_repo(&dir, &w.file),
            line: w.loc("/default/credits").line,
            commit: read.commit.sha,
            reference: rev,
        })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}

/// The Workspace's default limit at the approved ref, with where it is written.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DefaultLimit")]
pub(crate) struct DefaultLimitOut {
    /// The Workspace's name.
    workspace: String,
    credits: Credits,
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
    period: budgit_engine::model::Period,
    timezone: String,
    enforcement: budgit_engine::model::Enforcement,
    /// The Workspace's `overrides:` rules, defaults filled in.
    overrides: budgit_engine::model::OverridePolicy,
    file: String,
    line: u32,
    commit: String,
    #[serde(rename = "ref")]
    reference: String,
}

/// The body of `POST /v1/workspace/default/propose`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DefaultProposalIn")]
pub(crate) struct DefaultIn {
    #[serde(default)]
    credits: Option<Credits>,
    /// Product caps to set or add; `null` removes a cap.
    #[serde(default)]
    products: BTreeMap<String, Option<Credits>>,
    /// Model caps to set or add; `null` removes a cap.
    #[serde(default)]
    models: BTreeMap<String, Option<Credits>>,
    /// Why, 1 to 2000 characters (the commit message holds it).
    #[schemars(length(min = 1, max = crate::api::MAX_REASON), pattern(r"\S"))]
    reason: String,
}

struct DefaultJob {
    change: GroupChange,
    reason: String,
}

fn propose_default(job: DefaultJob, p: Proposing) -> ApiResult<Made> {
    let DefaultJob { change, reason } = job;
    let Proposing { repo, approved_ref, actor, people, now } = p;
    let (git, dir) = open_repo(&repo, &approved_ref)?;
    let read = git.read_policies(&approved_ref, &dir).map_err(git_error)?;
    let base_commit = read.commit.sha.clone();
    let (base, _) = load_sources(read.sources.clone());
    let Some(w) = base.workspace() else {
        return Err(ApiError::not_found(
            "workspace/none",
            format!("the policies at `{approved_ref}` have no single Workspace document"),
        ));
    };
    let (name, file, default) = (w.doc.name.clone(), w.file.clone(), w.doc.default.clone());
    let changed = changed_default(&default, &change);
    if changed.is_empty() {
        return Err(unprocessable(
            "proposals/no-change",
            "the default limit already has these values: nothing to propose",
        ));
    }
    let Some(source) = read.sources.iter().find(|s| s.path == file) else {
        return Err(unprocessable("proposals/not-editable", "the Workspace file could not be read"));
    };
    let edited = edit_default(&file, &source.text, &default, &effective_default(&default, &change))
        .map_err(edit_error)?;
    let what: Vec<String> = changed.iter().map(Changed::line).collect();
    let title = format!("default limit: {}", what.join(", "));
    let path = in_repo(&dir, &file);
    let message = format!(
        "Propose {title}\n\n{}\n\nWorkspace `{name}` in `{path}`:\n{}\n\nProposed in the console by {actor}.\n",
        reason.trim(),
        what.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n"),
    );
    let branch = git.free_branch(&format!("budgit/proposal/default-{}", now.format("%Y%m%d-%H%M%S")));
    let edits = BTreeMap::from([(file.to_string(), Some(edited))]);
    let (commit, (plan_markdown, plan_summary, plan_digest)) =
        commit_edits(&git, &read, &dir, &edits, &branch, &message, (&approved_ref, &people, now))?;
    Ok(Made {
        kind: "default",
        subject: name,
        request_id: None,
        branch,
        base_ref: approved_ref,
        base_commit,
        commit,
        file: path,
        title,
        reason,
        changes: Value::Array(changed.iter().map(changed_json).collect()),
        plan_markdown,
        plan_summary,
        plan_digest,
    })
}

/// `POST /v1/workspace/default/propose` (admin): a change of the default limit (credits,
/// caps) as a branch and a commit, with its plan.
pub async fn propose_default_limit(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let req: DefaultIn = json_body(body)?;
    let reason = reason_of(&req.reason)?;
    let change = GroupChange { credits: req.credits, pool: None, products: req.products, models: req.models };
    check_change(&change, "`credits`, `products` or `models`")?;
    let job = DefaultJob { change, reason };
    propose_with(&app, &who, repo, move |p| propose_default(job, p)).await
}

// ---------------------------------------------------------------------------
// The reconciler's runs

/// `GET /v1/reconciler/runs` (admin): the run reports kept, newest first, each with its
/// time, the commit applied, its writes (`applied`) and errors (`failures`); `after` is
/// the `seq` of the last run of the previous page.
pub async fn runs(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let ListQuery { q, limit, after } = ListQuery::<i64>::parse(raw.as_deref(), 50, MAX_PAGE)?;
    let after = after.unwrap_or(i64::MAX);
    let ok = match q.get("ok") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::bad_request("request/bad-query", "`ok` is `true` or `false`")),
    };
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, report, at, received_at FROM reconciler_runs
                 WHERE seq < ?1 AND (?2 IS NULL OR ok = ?2) ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(
                    rusqlite::params![after, ok, crate::api::Page::<RunOut, i64>::read_limit(limit)],
                    run_json,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(crate::api::Page::cut(rows, limit, |r| r.seq).into_response())
}
