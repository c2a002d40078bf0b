//! Team budget controls backed by the policy repository: groups, proposals, reconciler status.
//!
//! The console never changes a limit itself. It reads the groups from the policy
//! repository at the approved ref (the engine's git loader, as `validate --ref`
//! does), and a proposed change becomes a branch with one commit, made with
//! `load::git::commit_changes` so neither the index nor the work tree moves: the
//! group's YAML is edited in place by the engine's `edit` (only the scalars that
//! change, comments and layout kept, refused when it cannot be done safely), the
//! whole tree is validated as CI would, and the plan of the branch against the
//! approved ref is computed with the engine's plan. Credit requests become
//! Override proposals through `engine::request`, exactly as `budgit request` writes
//! them. Proposals and the reconciler's run reports are kept in SQLite. Git, YAML
//! and CEL work runs on a blocking thread with a large stack.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use budgit_engine::diag::output::ReportOutput;
use budgit_engine::directory::Directory;
use budgit_engine::edit::{
    Changed, EditError, GroupChange, cap_name_ok, changed_fields, check_removals, edit_group, effective,
};
use budgit_engine::load::git::{FileChange, GitError, GitRepo, TreeSources};
use budgit_engine::load::{Source, load_sources};
use budgit_engine::model::Workspace;
use budgit_engine::plan::side::{self, LoadedSide, SideError};
use budgit_engine::plan::{RefLabel, compute, render as plan_render};
use budgit_engine::reconcile::desired::directory_of;
use budgit_engine::request::{self, Amount, Need, RequestSpec};
use budgit_engine::resolve::Resolution;
use budgit_engine::standing::{AlertLevels, CapNames, CapUsage};
use budgit_engine::validate::{ValidateOptions, Validated, validate_sources};
use budgit_engine::workspace::{RunSummary, UserRecord};
use budgit_engine::{Credits, Report};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ListQuery, MAX_PAGE, json_body, path_param, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::{App, auth::Principal};

/// Run reports kept; older ones are pruned when a new one arrives.
const MAX_RUNS_KEPT: i64 = 1000;
/// Run reports `GET /v1/reconciler/status` returns.
const RUNS_SHOWN: i64 = 20;

/// Proposals made this run and the reconciler's last reports.
#[derive(Debug, Default)]
pub struct ProposalState {
    /// Held while a proposal is made: branch names are picked, then created.
    pub(super) writing: tokio::sync::Mutex<()>,
    /// The groups at the last commit read (by commit id and policy directory).
    groups: Mutex<Option<Arc<GroupsAt>>>,
    /// The workspace's alert levels at the approved commit last resolved.
    alerts: Mutex<Option<AlertsAt>>,
    /// Set while a background read of the alert levels runs.
    alerts_reading: std::sync::atomic::AtomicBool,
}

/// The groups of one commit.
#[derive(Debug)]
struct GroupsAt {
    commit: String,
    dir: String,
    /// Without their members and usage, which come from the ledger at each request.
    groups: Vec<GroupOut>,
    errors: usize,
}

/// A group at the approved ref, with its members and usage from the applied limits.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Group")]
pub(crate) struct GroupOut {
    name: String,
    description: Option<String>,
    priority: i64,
    selector: Option<String>,
    /// Members the group lists by name.
    explicit_members: usize,
    /// People the group excludes by name.
    excluded: usize,
    limit: GroupLimit,
    pool: Option<Credits>,
    owners: Vec<String>,
    /// Users whose applied limit comes with this group.
    members: usize,
    used: Credits,
    pool_used: Option<Credits>,
    file: String,
    line: u32,
    limit_line: Option<u32>,
    pool_line: Option<u32>,
    commit: String,
}

/// A group's limit as its file states it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct GroupLimit {
    credits: Credits,
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
}

/// What `GET /v1/groups` answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Groups")]
pub(crate) struct GroupsOut {
    data: Vec<GroupOut>,
    /// The approved ref.
    #[serde(rename = "ref")]
    reference: String,
    commit: String,
    /// The policy directory inside the repository.
    policies: String,
    /// Validation errors at the approved ref.
    errors: usize,
}

pub(super) fn no_repo() -> ApiError {
    ApiError::not_found(
        "repo/not-configured",
        "the console has no policy repository: start it with `budgit serve --repo DIR`",
    )
}

pub(super) fn git_error(e: GitError) -> ApiError {
    match e {
        GitError::UnknownRevision { .. } | GitError::Shallow { .. } => {
            ApiError::conflict("repo/unknown-ref", e.to_string())
        }
        GitError::Open { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "repo/unavailable", e.to_string())
        }
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "repo/git", other.to_string()),
    }
}

fn side_error(e: SideError) -> ApiError {
    match e {
        SideError::Git(g) => git_error(g),
        SideError::Read(r) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "repo/read", r.to_string()),
    }
}

pub(super) fn worker_error(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "repo/worker",
        format!("the repository work could not run: {e}"),
    )
}

/// Runs git, YAML and CEL work off the async workers, on a thread with a large stack.
pub(super) async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || budgit_engine::stack::with_large_stack(f))
        .await
        .map_err(|e| worker_error(&e))?
        .map_err(|e| worker_error(&e))?
}

/// The repository and the policy directory inside it.
///
/// `--repo` may name the work tree's root, a bare repository, or the policy
/// directory inside a work tree. At the root, `policies/` is the policy
/// directory when the approved commit has one (the layout `budgit` expects),
/// else the root itself.
pub(super) fn open_repo(repo: &Path, rev: &str) -> ApiResult<(GitRepo, String)> {
    let git = GitRepo::discover(repo).map_err(git_error)?;
    let inside =
        if git.workdir().is_some() { git.repo_path(repo).unwrap_or_default() } else { String::new() };
    if !inside.is_empty() {
        return Ok((git, inside));
    }
    let commit = git.commit(rev).map_err(git_error)?;
    let tree = commit.tree().map_err(|e| git_error(e.into()))?;
    let has_policies =
        tree.get_path(Path::new("policies")).is_ok_and(|entry| entry.kind() == Some(git2::ObjectType::Tree));
    drop(tree);
    drop(commit);
    Ok((git, if has_policies { "policies".to_string() } else { String::new() }))
}

/// A path inside the repository from one relative to the policy directory.
pub(super) fn in_repo(dir: &str, file: &str) -> String {
    if dir.is_empty() { file.to_string() } else { format!("{dir}/{file}") }
}

/// Credits as every response carries them: an exact JSON number.
pub(super) fn credits_text(c: Credits) -> Value {
    crate::api::credits_json(c.micros())
}

/// 422 with the findings: the change is not valid, so nothing was committed.
pub(super) fn invalid(report: &Report, dir: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "proposals/invalid",
        format!("{what} does not pass validation ({} errors): nothing was committed", report.errors()),
    )
    // The findings as `validate --format json` lists them, files from the repository root.
    .with_extra(
        serde_json::to_value(ReportOutput::new(report, |l| in_repo(dir, &l.file))).unwrap_or_default(),
    )
}

pub(super) fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

// ---------------------------------------------------------------------------
// GET /v1/groups

/// Members and usage per applied group, from the ledger: (members, micro-credits used).
fn group_usage(app: &App) -> ApiResult<HashMap<String, (usize, i64)>> {
    let standings = app.ledger()?.standings();
    let mut out: HashMap<String, (usize, i64)> = HashMap::new();
    for s in standings {
        if let Some(group) = s.limit.and_then(|l| l.group) {
            let e = out.entry(group).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(s.used);
        }
    }
    Ok(out)
}

/// Reads the groups at `rev`, reusing the last read when the commit is the same.
fn groups_at(app: &App, repo: &Path, rev: &str, now: DateTime<Utc>) -> ApiResult<Arc<GroupsAt>> {
    let (git, dir) = open_repo(repo, rev)?;
    let sha = git.commit(rev).map_err(git_error)?.id().to_string();
    if let Ok(cache) = app.proposals.groups.lock()
        && let Some(hit) = cache.as_ref().filter(|g| g.commit == sha && g.dir == dir)
    {
        return Ok(hit.clone());
    }
    let loaded = side::from_git(&git, &sha, &dir, &ValidateOptions { now }).map_err(side_error)?;
    let policies = &loaded.validated.policies;
    let mut groups: Vec<_> = policies.groups.iter().collect();
    groups.sort_by(|a, b| b.doc.priority.cmp(&a.doc.priority).then_with(|| a.doc.name.cmp(&b.doc.name)));
    let rows = groups
        .iter()
        .map(|g| {
            let d = &g.doc;
            let line_of = |pointer: &str| g.node.pointer(pointer).map(|n| n.pos.line);
            GroupOut {
                name: d.name.clone(),
                description: d.description.clone(),
                priority: d.priority,
                selector: d.selector.clone(),
                explicit_members: d.members.len(),
                excluded: d.exclude.len(),
                limit: GroupLimit {
                    credits: d.limit.credits,
                    products: d.limit.products.clone(),
                    models: d.limit.models.clone(),
                },
                pool: d.pool.as_ref().map(|p| p.credits),
                owners: d.owners.clone(),
                members: 0,
                used: Credits::ZERO,
                pool_used: None,
                file: in_repo(&dir, &g.file),
                line: g.key_loc("name").line,
                limit_line: line_of("/limit/credits"),
                pool_line: line_of("/pool/credits"),
                commit: sha.clone(),
            }
        })
        .collect();
    let at = Arc::new(GroupsAt { commit: sha, dir, groups: rows, errors: loaded.validated.report.errors() });
    if let Ok(mut cache) = app.proposals.groups.lock() {
        *cache = Some(at.clone());
    }
    Ok(at)
}

/// `GET /v1/groups` (admin): the groups at the approved ref, with members and usage from the ledger.
pub async fn groups(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let rev = app.approved_ref.clone();
    let now = Utc::now();
    let reader = app.clone();
    let at = blocking(move || groups_at(&reader, &repo, &rev, now)).await?;
    let usage = group_usage(&app)?;
    let pools: HashMap<String, i64> =
        app.ledger()?.pool_standings().into_iter().map(|(g, _, used)| (g, used)).collect();
    let data = at
        .groups
        .iter()
        .map(|g| {
            let (members, used) = usage.get(&g.name).copied().unwrap_or_default();
            GroupOut {
                members,
                used: Credits::from_micros(used),
                pool_used: pools.get(&g.name).map(|u| Credits::from_micros(*u)),
                ..g.clone()
            }
        })
        .collect();
    Ok(axum::Json(GroupsOut {
        data,
        reference: app.approved_ref.clone(),
        commit: at.commit.clone(),
        policies: at.dir.clone(),
        errors: at.errors,
    })
    .into_response())
}

// ---------------------------------------------------------------------------
// The workspace's alert levels

/// How long a resolution of the approved ref serves before the ref is resolved again.
const ALERTS_TTL: Duration = Duration::from_secs(1);
/// The alert levels read at one approved commit.
#[derive(Debug)]
struct AlertsAt {
    /// The commit the approved ref named (`None` when it could not be resolved).
    commit: Option<String>,
    levels: Arc<AlertLevels>,
    checked: Instant,
}

/// The alert levels of the Workspace at the approved ref. Blocking (git): call it off
/// the async workers. The ref is resolved at most once per [`ALERTS_TTL`] and the
/// policies are read only when it names another commit, so a merge that changes the
/// levels shows within about a second.
pub(crate) fn alert_levels(app: &App) -> Arc<AlertLevels> {
    let Some(repo) = app.repo.as_deref() else {
        return Arc::default();
    };
    let Ok(mut cache) = app.proposals.alerts.lock() else {
        return Arc::default();
    };
    if let Some(at) = cache.as_ref().filter(|a| a.checked.elapsed() < ALERTS_TTL) {
        return at.levels.clone();
    }
    let fresh = read_alert_levels(repo, &app.approved_ref, cache.as_ref());
    let levels = fresh.levels.clone();
    *cache = Some(fresh);
    levels
}

/// The alert levels as last read, without waiting (for async code): when they are older
/// than [`ALERTS_TTL`], a background read starts and a later call sees its result. The
/// same `Arc` comes back while the approved commit stays the same, so a copy holding it
/// is current. `None` without a policy repository, or before the first read.
pub(crate) fn alert_levels_now(app: &App) -> Option<Arc<AlertLevels>> {
    app.repo.as_ref()?;
    let levels = {
        let cache = app.proposals.alerts.lock().ok()?;
        let at = cache.as_ref()?;
        if at.checked.elapsed() < ALERTS_TTL {
            return Some(at.levels.clone());
        }
        at.levels.clone()
    };
    let reading = &app.proposals.alerts_reading;
    if let Ok(runtime) = tokio::runtime::Handle::try_current()
        && !reading.swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        let app = app.clone();
        runtime.spawn_blocking(move || {
            alert_levels(&app);
            app.proposals.alerts_reading.store(false, std::sync::atomic::Ordering::Release);
        });
    }
    Some(levels)
}

fn read_alert_levels(repo: &Path, rev: &str, last: Option<&AlertsAt>) -> AlertsAt {
    let checked = Instant::now();
    let unknown = |commit: Option<String>| AlertsAt { commit, levels: Arc::default(), checked };
    let Ok((git, dir)) = open_repo(repo, rev) else {
        return unknown(None);
    };
    let Ok(sha) = git.commit(rev).map(|c| c.id().to_string()) else {
        return unknown(None);
    };
    if let Some(last) = last.filter(|l| l.commit.as_deref() == Some(sha.as_str())) {
        return AlertsAt { commit: Some(sha), levels: last.levels.clone(), checked };
    }
    let Ok(read) = git.read_policies(&sha, &dir) else {
        return unknown(Some(sha));
    };
    // only the files that can hold the Workspace need parsing
    let sources = read.sources.into_iter().filter(|s| s.text.contains("Workspace")).collect();
    let (set, _) = load_sources(sources);
    let levels = set.workspace().map_or_else(AlertLevels::default, |w| AlertLevels::of(&w.doc));
    AlertsAt { commit: Some(sha), levels: Arc::new(levels), checked }
}

/// One changed value as the response lists it.
pub(super) fn changed_json(c: &Changed) -> Value {
    json!({
        "field": c.field,
        "before": c.before.map(credits_text),
        "after": c.after.map(credits_text),
    })
}

/// The editor's refusal as a 422: nothing was committed.
pub(super) fn edit_error(e: EditError) -> ApiError {
    let code = match e {
        EditError::NoSuchCap { .. } => "proposals/no-such-cap",
        EditError::BadCapName(_) => "proposals/bad-cap",
        EditError::NotEditable { .. } | EditError::Unparsable(_) => "proposals/not-editable",
    };
    unprocessable(code, e.to_string())
}

// ---------------------------------------------------------------------------
// Proposals: shared parts

/// The server's view a plan is computed against.
pub(super) struct People {
    pub(super) users: Vec<UserRecord>,
    /// Micro-credits used this period, and per product and per model, by email.
    used: HashMap<String, Usage>,
}

/// One user's usage this period in micro-credits: the total, per product, per model.
struct Usage {
    total: i64,
    products: Vec<(String, i64)>,
    models: Vec<(String, i64)>,
}

/// Reads the directory (the server's users) and this period's usage (the ledger).
///
/// A plan needs a directory and usage. The console has no directory file: it uses
/// the users imported into the server, which are the users the reconciler resolves
/// against when it runs without `--directory`, and the ledger's usage of the
/// current period, which is what the check endpoint enforces. So the plan shows the
/// effect on the people this workspace actually governs, at today's usage.
pub(super) async fn people(app: &App) -> ApiResult<People> {
    let users = app
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT email, attrs FROM users ORDER BY email")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .map(|(email, attrs)| UserRecord {
                    email,
                    attributes: serde_json::from_str(&attrs).unwrap_or_default(),
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let used = app
        .ledger()?
        .standings()
        .into_iter()
        .map(|s| (s.user, Usage { total: s.used, products: s.products, models: s.models }))
        .collect();
    Ok(People { users, used })
}

/// A proposal made: the branch and commit, and its plan.
pub(super) struct Made {
    pub(super) kind: &'static str,
    pub(super) subject: String,
    pub(super) request_id: Option<i64>,
    pub(super) branch: String,
    pub(super) base_ref: String,
    pub(super) base_commit: String,
    pub(super) commit: String,
    pub(super) file: String,
    pub(super) title: String,
    pub(super) reason: String,
    pub(super) changes: Value,
    pub(super) plan_markdown: String,
    pub(super) plan_summary: Value,
    pub(super) plan_digest: String,
}

/// The server's users and ledger as the people of a plan.
impl compute::People for &People {
    type Error = ApiError;

    fn directory(&mut self, workspace: &Workspace) -> ApiResult<Directory> {
        directory_of(&self.users, &workspace.attributes).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "proposals/directory", e.to_string())
        })
    }

    fn used(
        &mut self,
        directory: &Directory,
        _head: &Resolution,
        caps: CapNames,
    ) -> ApiResult<(Vec<Credits>, CapUsage)> {
        // The ledger's usage is the current period's already: the check endpoint enforces it.
        let mut capped = CapUsage::new(caps, directory.len());
        let totals = directory
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let Some(usage) = self.used.get(&u.email) else {
                    return Credits::ZERO;
                };
                // A product and a model are two cells: each is added on its own.
                for (product, micros) in &usage.products {
                    capped.add(i, product, "", *micros);
                }
                for (model, micros) in &usage.models {
                    capped.add(i, "", model, *micros);
                }
                Credits::from_micros(usage.total)
            })
            .collect();
        Ok((totals, capped))
    }

    fn complete(&self) -> bool {
        // Before any import the server knows nobody: every person named would be "missing".
        !self.users.is_empty()
    }
}

/// The plan of `head` (the new branch, already validated) against `base_commit`, rendered.
pub(super) fn plan_of(
    git: &GitRepo,
    base_ref: &str,
    base_commit: &str,
    head: LoadedSide,
    dir: &str,
    people: &People,
    now: DateTime<Utc>,
) -> ApiResult<(String, Value, String)> {
    let how = compute::Base::Incremental;
    let options = ValidateOptions { now };
    let mut sides = compute::read_sides(git, dir, base_commit, compute::Head::Loaded(head), how, &options)
        .map_err(side_error)?;
    sides.base.0.name = Some(base_ref.to_string());
    let plan_failed = |e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "proposals/plan", format!("cannot plan: {e}"))
    };
    // A reviewer of one proposal needs the events it touches, not every other one.
    let options = compute::Options { now, all_events: false, root: dir, how };
    let planned = match compute::compute(&sides, &mut &*people, &options, &mut |_| {}) {
        Ok(compute::Outcome::Plan(planned)) => planned,
        Ok(compute::Outcome::Unresolvable { why, .. }) => return Err(plan_failed(&why)),
        Err(compute::ComputeError::People(e)) => return Err(e),
        Err(compute::ComputeError::Base(e)) => return Err(plan_failed(&format_args!("{e}: {}", e.source))),
    };
    let plan = &planned.plan;
    let summary = serde_json::to_value(&plan.summary).unwrap_or(Value::Null);
    Ok((plan_render::markdown(plan), summary, plan.digest.clone()))
}

/// The new branch as the head of its plan: the tree just validated, now committed.
pub(super) fn head_side(branch: &str, commit: &str, validated: Validated) -> LoadedSide {
    LoadedSide {
        label: RefLabel { name: Some(branch.to_string()), commit: Some(commit.to_string()) },
        validated,
    }
}

/// A name fit for a branch: lowercase letters, digits, `.`, `_` and `-`.
pub(super) fn branch_part(text: &str) -> String {
    budgit_engine::load::git::ref_component(text, 60, "group")
}

/// Stores a proposal and answers it.
pub(super) async fn store_made(app: &App, made: Made, actor: String, now: i64) -> ApiResult<ProposalOut> {
    app.store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO proposals (kind, subject, request_id, branch, base_ref, base_commit, commit_id, file,
                     title, reason, changes, plan_markdown, plan_summary, plan_digest, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                rusqlite::params![
                    made.kind,
                    made.subject,
                    made.request_id,
                    made.branch,
                    made.base_ref,
                    made.base_commit,
                    made.commit,
                    made.file,
                    made.title,
                    made.reason,
                    made.changes.to_string(),
                    made.plan_markdown,
                    made.plan_summary.to_string(),
                    made.plan_digest,
                    now,
                    actor,
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject, old, new, commit_id, plan_digest)
                 VALUES (?1, ?2, 'proposal.create', ?3, ?4, ?5, ?6, ?7)",
                (
                    now,
                    &actor,
                    format!("{}:{}", made.kind, made.subject),
                    &made.base_commit,
                    &made.branch,
                    &made.commit,
                    &made.plan_digest,
                ),
            )?;
            if let Some(request) = made.request_id {
                let proposal = json!({
                    "proposal_id": id,
                    "branch": made.branch,
                    "commit": made.commit,
                    "file": made.file,
                    "override": made.changes.get(0).and_then(|c| c.get("name")).cloned(),
                });
                let step = json!({
                    "at": rfc3339(now),
                    "by": actor,
                    "branch": made.branch,
                    "commit": made.commit,
                    "plan_summary": made.plan_summary,
                });
                let updated = tx.execute(
                    "UPDATE requests SET status = 'proposed', decided_at = ?1, decided_by = ?2, proposal = ?3,
                         lifecycle = json_set(COALESCE(lifecycle, '{}'), '$.proposed', json(?5))
                     WHERE id = ?4 AND status = 'pending'",
                    (now, &actor, proposal.to_string(), request, step.to_string()),
                )?;
                if updated != 1 {
                    return Err(ApiError::conflict(
                        "requests/decided",
                        format!("request `{request}` was decided meanwhile"),
                    ));
                }
                tx.execute(
                    "INSERT INTO audit (at, actor, action, subject, old, new, commit_id)
                     VALUES (?1, ?2, 'request.proposed', ?3, 'pending', 'proposed', ?4)",
                    (now, &actor, format!("request:{request}"), &made.commit),
                )?;
            }
            let row = tx.query_row(&format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE id = ?1"), [id], proposal_json)?;
            Ok((row, None))
        })
        .await
}

const PROPOSAL_COLUMNS: &str = "id, kind, subject, request_id, branch, base_ref, base_commit, commit_id, file, title, \
                                reason, changes, plan_markdown, plan_summary, plan_digest, created_at, created_by";

fn proposal_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProposalOut> {
    let parse = |t: String| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null);
    Ok(ProposalOut {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        request_id: r.get(3)?,
        branch: r.get(4)?,
        base: Base { reference: r.get(5)?, commit: r.get(6)? },
        commit: r.get(7)?,
        file: r.get(8)?,
        title: r.get(9)?,
        reason: r.get(10)?,
        changes: parse(r.get(11)?),
        plan: PlanOut { markdown: r.get(12)?, summary: parse(r.get(13)?), digest: r.get(14)? },
        created_at: rfc3339(r.get(15)?),
        created_by: r.get(16)?,
    })
}

/// A proposal as the service answers it: the branch and commit made, the plan of it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Proposal")]
pub(crate) struct ProposalOut {
    pub(crate) id: i64,
    #[schemars(extend("enum" = ["group", "request", "lapse", "move", "default"]))]
    kind: String,
    /// The group, the requesting user, the override (lapse, move) or the Workspace (default).
    subject: String,
    request_id: Option<i64>,
    branch: String,
    base: Base,
    commit: String,
    file: String,
    title: String,
    reason: String,
    /// What the proposal changed, one entry per value or file.
    #[schemars(extend("type" = "array"))]
    changes: Value,
    plan: PlanOut,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    created_by: String,
}

/// Where a proposal's branch starts: the approved ref and its commit then.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ProposalBase")]
pub(crate) struct Base {
    #[serde(rename = "ref")]
    reference: String,
    commit: String,
}

/// The plan of a proposal's branch.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ProposalPlan")]
pub(crate) struct PlanOut {
    markdown: String,
    /// The counts of `budgit plan --format json`.
    #[schemars(extend("type" = "object"))]
    summary: Value,
    digest: String,
}

// ---------------------------------------------------------------------------
// POST /v1/proposals

/// Present (even as `null`) versus absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The body of `POST /v1/proposals`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProposalIn")]
pub(crate) struct ProposalIn {
    #[schemars(length(min = 1, max = crate::api::MAX_NAME), pattern(crate::api::NAME_PATTERN))]
    group: String,
    #[serde(default)]
    credits: Option<Credits>,
    /// Absent: unchanged; `null`: remove the pool; a value: set it.
    #[serde(default, deserialize_with = "present")]
    pool: Option<Option<Credits>>,
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

/// Caps one proposal may set, add or remove.
const MAX_CAPS: usize = 50;

/// Everything the blocking part of a group proposal needs.
struct GroupJob {
    group: String,
    change: GroupChange,
    reason: String,
}

/// What the blocking part of every proposal needs: the policy repository, the approved
/// ref, who proposes, the people a plan is computed against and the instant.
pub(super) struct Proposing {
    pub(super) repo: PathBuf,
    pub(super) approved_ref: String,
    pub(super) actor: String,
    pub(super) people: People,
    pub(super) now: DateTime<Utc>,
}

/// Makes a proposal: one at a time (a branch and a commit in the shared repository),
/// `make` run off the async threads, the result stored and answered `201`.
pub(super) async fn propose_with(
    app: &App,
    who: &Principal,
    repo: PathBuf,
    make: impl FnOnce(Proposing) -> ApiResult<Made> + Send + 'static,
) -> ApiResult<Response> {
    let _writing = app.proposals.writing.lock().await;
    let people = people(app).await?;
    let now = Utc::now();
    let actor = app.tokens.subject(who);
    let proposing =
        Proposing { repo, approved_ref: app.approved_ref.clone(), actor: actor.clone(), people, now };
    let made = blocking(move || make(proposing)).await?;
    let row = store_made(app, made, actor, now.timestamp()).await?;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

/// A plan as the proposals keep it: Markdown, summary and digest.
pub(super) type PlanParts = (String, Value, String);

/// A proposal's edits to the approved tree (a path in the policy directory to its new
/// text, or to `None` to remove the file): the edited tree validated as CI would, then
/// committed on `branch` with `message` and planned against the approved ref. Answers
/// the commit and its plan.
pub(super) fn commit_edits(
    git: &GitRepo,
    read: &TreeSources,
    dir: &str,
    edits: &BTreeMap<String, Option<String>>,
    branch: &str,
    message: &str,
    (approved_ref, people, now): (&str, &People, DateTime<Utc>),
) -> ApiResult<(String, PlanParts)> {
    let sources: Vec<Source> = read
        .sources
        .iter()
        .filter_map(|s| match edits.get(&*s.path) {
            None => Some(s.clone()),
            Some(None) => None,
            Some(Some(text)) => {
                Some(Source { path: s.path.clone(), text: text.as_str().into(), commit: None })
            }
        })
        .collect();
    let checked = validate_sources(sources, read.diagnostics.clone(), &ValidateOptions { now });
    if checked.report.has_errors() {
        return Err(invalid(&checked.report, dir, "the change"));
    }
    let paths: Vec<(String, Option<&String>)> =
        edits.iter().map(|(p, t)| (in_repo(dir, p), t.as_ref())).collect();
    let changes: Vec<FileChange<'_>> = paths
        .iter()
        .map(|(path, text)| match text {
            Some(content) => FileChange::Write { path, content },
            None => FileChange::Delete { path },
        })
        .collect();
    let base_commit = read.commit.sha.as_str();
    let commit = git.commit_changes(base_commit, branch, &changes, message).map_err(git_error)?;
    let plan =
        plan_of(git, approved_ref, base_commit, head_side(branch, &commit.sha, checked), dir, people, now)?;
    Ok((commit.sha, plan))
}

fn propose_group(job: GroupJob, p: Proposing) -> ApiResult<Made> {
    let GroupJob { group: name, change, reason } = job;
    let Proposing { repo, approved_ref, actor, people, now } = p;
    let (git, dir) = open_repo(&repo, &approved_ref)?;
    let read = git.read_policies(&approved_ref, &dir).map_err(git_error)?;
    let base_commit = read.commit.sha.clone();
    // Parsing is enough to find the group; the edited tree is what gets validated.
    let (base, _) = load_sources(read.sources.clone());
    let Some(loaded) = base.groups.iter().find(|g| g.doc.name == name) else {
        return Err(ApiError::not_found(
            "groups/unknown",
            format!("no group `{}` at `{approved_ref}`", crate::api::shorten(&name)),
        ));
    };
    let group = loaded.doc.clone();
    let file = loaded.file.clone();
    check_removals(&group, &change).map_err(edit_error)?;
    let changed = changed_fields(&group, &change);
    if changed.is_empty() {
        return Err(unprocessable(
            "proposals/no-change",
            format!("group `{name}` already has these values: nothing to propose"),
        ));
    }
    let change = effective(&group, &change);
    let Some(source) = read.sources.iter().find(|s| s.path == file) else {
        return Err(edit_error(EditError::NotEditable { what: "the group".into() }));
    };
    let edited = edit_group(&file, &source.text, &group, &change).map_err(edit_error)?;
    let what: Vec<String> = changed.iter().map(Changed::line).collect();
    let title = format!("{name}: {}", what.join(", "));
    let path = in_repo(&dir, &file);
    let message = format!(
        "Propose {title}\n\n{}\n\nGroup `{name}` in `{path}`:\n{}\n\nProposed in the console by {actor}.\n",
        reason.trim(),
        what.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n"),
    );
    let branch =
        git.free_branch(&format!("budgit/proposal/{}-{}", branch_part(&name), now.format("%Y%m%d-%H%M%S")));
    let edits = BTreeMap::from([(file.to_string(), Some(edited))]);
    let (commit, (plan_markdown, plan_summary, plan_digest)) =
        commit_edits(&git, &read, &dir, &edits, &branch, &message, (&approved_ref, &people, now))?;
    Ok(Made {
        kind: "group",
        subject: name,
        request_id: None,
        branch,
        base_ref: approved_ref,
        base_commit,
        commit,
        file: path,
        title,
        reason: reason.trim().to_string(),
        changes: Value::Array(changed.iter().map(changed_json).collect()),
        plan_markdown,
        plan_summary,
        plan_digest,
    })
}

/// A proposal's reason, trimmed: 1 to 2000 characters.
pub(super) fn reason_of(text: &str) -> ApiResult<String> {
    let reason = text.trim().to_string();
    if reason.is_empty() || reason.chars().count() > crate::api::MAX_REASON {
        return Err(ApiError::bad_request("proposals/bad-reason", "`reason` must be 1 to 2000 characters"));
    }
    Ok(reason)
}

/// Refuses a limit change a proposal cannot make: a negative amount, more than
/// [`MAX_CAPS`] caps, a cap name that is not a product or model name, or no change at
/// all (`fields` names what the caller could have given).
pub(super) fn check_change(change: &GroupChange, fields: &str) -> ApiResult<()> {
    let amounts = change
        .credits
        .iter()
        .chain(change.pool.iter().flatten())
        .chain(change.products.values().flatten())
        .chain(change.models.values().flatten());
    if amounts.clone().any(|c| c.micros() < 0) {
        return Err(ApiError::bad_request("proposals/bad-credits", "credits must be zero or more"));
    }
    if change.products.len() + change.models.len() > MAX_CAPS {
        return Err(ApiError::bad_request(
            "proposals/bad-cap",
            format!("a proposal changes at most {MAX_CAPS} caps"),
        ));
    }
    if let Some(name) = change.products.keys().chain(change.models.keys()).find(|n| !cap_name_ok(n)) {
        return Err(ApiError::bad_request(
            "proposals/bad-cap",
            format!(
                "`{}` is not a product or model name: use 1 to 128 letters, digits and `.` `_` `-` `:` `/` `@` `+`",
                crate::api::shorten(name)
            ),
        ));
    }
    if *change == GroupChange::default() {
        return Err(ApiError::bad_request("proposals/nothing", format!("give {fields} to change")));
    }
    Ok(())
}

/// `POST /v1/proposals` (admin): a change of a group's limit, caps or pool as a branch and a commit, with its plan.
pub async fn create(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let req: ProposalIn = json_body(body)?;
    crate::api::check_name("group", &req.group)?;
    let reason = reason_of(&req.reason)?;
    let change =
        GroupChange { credits: req.credits, pool: req.pool, products: req.products, models: req.models };
    check_change(&change, "`credits`, `pool`, `products` or `models`")?;
    let job = GroupJob { group: req.group, change, reason };
    propose_with(&app, &who, repo, move |p| propose_group(job, p)).await
}

/// `GET /v1/proposals` (admin): proposals made, newest first; `after` is the id cursor.
pub async fn list(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let ListQuery { limit, after, .. } = ListQuery::<i64>::parse(raw.as_deref(), 50, MAX_PAGE)?;
    let after = after.unwrap_or(i64::MAX);
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map((after, crate::api::Page::<ProposalOut, i64>::read_limit(limit)), proposal_json)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(crate::api::Page::cut(rows, limit, |r| r.id).into_response())
}

// ---------------------------------------------------------------------------
// POST /v1/requests/{id}/propose

/// Everything the blocking part of a request proposal needs.
struct RequestJob {
    repo: PathBuf,
    approved_ref: String,
    id: i64,
    spec: RequestSpec,
    actor: String,
    people: People,
    now: DateTime<Utc>,
}

fn make_request_proposal(job: RequestJob) -> ApiResult<Made> {
    let RequestJob { repo, approved_ref, id, spec, actor, people, now } = job;
    let (git, dir) = open_repo(&repo, &approved_ref)?;
    let options = ValidateOptions { now };
    let read = git.read_policies(&approved_ref, &dir).map_err(git_error)?;
    let base_commit = read.commit.sha.clone();
    // Drafting needs the names taken and the time zone: parsing is enough.
    let (base, _) = load_sources(read.sources.clone());
    // requests still waiting on their branches have taken their file names too
    let pending = git.override_names_on_branches(&dir).map_err(git_error)?;
    let drafted = request::draft(&spec, &base, &pending, &dir, now)
        .map_err(|e| unprocessable("proposals/bad-request", e.to_string()))?;
    // The drafted override names the user canonically; compare people the same way.
    let user = budgit_engine::identity::canonical(&spec.user)
        .map_err(|e| unprocessable("proposals/bad-request", e.to_string()))?;
    let user = &*user;
    // An override for someone the workspace does not know would never apply.
    if !people.users.is_empty()
        && !people.users.iter().any(|u| budgit_engine::identity::canonical(&u.email).is_ok_and(|c| c == user))
    {
        return Err(unprocessable(
            "proposals/unknown-user",
            format!("user `{user}` is not in the workspace's directory: nothing was committed"),
        ));
    }
    let checked = request::check(&read.sources, &read.diagnostics, &drafted, None, &options);
    if checked.report.has_errors() {
        return Err(invalid(&checked.report, &dir, "the override"));
    }
    let branch = git.free_branch(&request::default_branch(user, drafted.starts));
    let path = in_repo(&dir, &drafted.path);
    let message = format!(
        "{}\nCredit request #{id}, proposed in the console by {actor}.\n",
        request::commit_message(&spec, &drafted)
    );
    let commit =
        git.commit_new_file(&base_commit, &branch, &path, &drafted.text, &message).map_err(git_error)?;
    let (plan_markdown, plan_summary, plan_digest) = plan_of(
        &git,
        &approved_ref,
        &base_commit,
        head_side(&branch, &commit.sha, checked),
        &dir,
        &people,
        now,
    )?;
    let what = request::amount_text(&spec);
    let (cap_kind, cap_name) = match spec.need.cap() {
        Some((kind, name)) => (Some(kind.key()), Some(name)),
        None => (None, None),
    };
    Ok(Made {
        kind: "request",
        subject: user.to_string(),
        request_id: Some(id),
        branch,
        base_ref: approved_ref,
        base_commit,
        commit: commit.sha,
        file: path,
        title: format!("{user}: {what} until {} (request #{id})", drafted.expires.format("%Y-%m-%d")),
        reason: spec.reason.trim().to_string(),
        changes: json!([{
            "field": "override",
            "name": drafted.name,
            "user": user,
            "add": credits_text(match spec.amount { Amount::Add(c) | Amount::Limit(c) => c }),
            "caps": cap_kind.map(|k| json!({ "kind": k, "name": cap_name })),
            "starts": drafted.starts.to_string(),
            "expires": drafted.expires.to_string(),
            "text": drafted.text,
        }]),
        plan_markdown,
        plan_summary,
        plan_digest,
    })
}

/// `POST /v1/requests/{id}/propose` (admin): a pending credit request as an Override on a branch.
pub async fn propose_request(
    State(app): State<App>,
    who: Principal,
    id: Result<UrlPath<String>, PathRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let id = path_param(id)?
        .parse::<i64>()
        .map_err(|_| ApiError::bad_request("requests/bad-id", "a request id is a whole number"))?;
    let repo = app.repo.clone().ok_or_else(no_repo)?;
    let _writing = app.proposals.writing.lock().await;
    let found = app
        .store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT email, micros, days, reason, status, product, model, context FROM requests WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?),
                        r.get::<_, String>(4)?,
                        (r.get::<_, Option<String>>(5)?, r.get::<_, Option<String>>(6)?),
                        r.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .optional()?)
        })
        .await?;
    let Some(((email, micros, days, reason), status, (product, model), context)) = found else {
        return Err(ApiError::not_found("requests/unknown", format!("no request `{id}`")));
    };
    if status != "pending" {
        return Err(ApiError::conflict("requests/decided", format!("request `{id}` is already {status}")));
    }
    let need = match (product, model) {
        (Some(p), _) => Need::Product(p),
        (None, Some(m)) => Need::Model(m),
        (None, None) => Need::Total,
    };
    // the person's own words for reviewers: the `note` of the context the request carried
    let note = context
        .and_then(|c| serde_json::from_str::<Value>(&c).ok())
        .and_then(|c| c.get("note").and_then(Value::as_str).map(str::to_string));
    let spec = RequestSpec {
        user: email.clone(),
        amount: Amount::Add(Credits::from_micros(micros)),
        days: u32::try_from(days).unwrap_or(0),
        reason,
        starts: None,
        requested_by: Some(email),
        need,
        note,
    };
    let people = people(&app).await?;
    let now = Utc::now();
    let job = RequestJob {
        repo,
        approved_ref: app.approved_ref.clone(),
        id,
        spec,
        actor: app.tokens.subject(&who),
        people,
        now,
    };
    let made = blocking(move || make_request_proposal(job)).await?;
    let row = store_made(&app, made, app.tokens.subject(&who), now.timestamp()).await?;
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

// ---------------------------------------------------------------------------
// Reconciler status

pub(super) fn run_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunOut> {
    let report: String = r.get(1)?;
    // written by `put_status` from a `RunSummary`: a report that does not read back is a
    // damaged store, not something to answer around
    let mut run = serde_json::from_str::<RunSummary>(&report)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into()))?;
    run.at = chrono::DateTime::from_timestamp(r.get(2)?, 0);
    let (writes, errors) = (run.applied, run.failures.len());
    Ok(RunOut { seq: r.get(0)?, run, received_at: rfc3339(r.get(3)?), writes, errors })
}

/// A run as the service keeps it: the report, its sequence and when it arrived.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ReconcilerRun")]
pub(crate) struct RunOut {
    pub(crate) seq: i64,
    #[serde(flatten)]
    run: RunSummary,
    /// When the service received the report (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    received_at: String,
    /// `applied`: the writes the run made.
    writes: usize,
    /// How many failures.
    errors: usize,
}

/// What `GET /v1/reconciler/status` answers.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ReconcilerStatus")]
pub(crate) struct StatusOut {
    /// The newest run; null before the first.
    last: Option<RunOut>,
    /// The newest runs, newest first.
    runs: Vec<RunOut>,
}

/// `PUT /v1/reconciler/status` (admin): stores a run report (the reconciler sends one per run).
pub async fn put_status(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let mut run: RunSummary = json_body(body)?;
    let now = Utc::now();
    let at = run.at.unwrap_or(now);
    run.at = Some(at);
    if run.failures.len() > 200 || run.failures.iter().any(|f| f.len() > 4000) {
        return Err(ApiError::too_large("a run report holds at most 200 failures of 4000 bytes each"));
    }
    let report = serde_json::to_string(&run).map_err(|e| ApiError::store(&e))?;
    let row = app
        .store
        .write(move |tx| {
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            tx.execute(
                "INSERT INTO reconciler_runs (at, ok, commit_id, applied, unchanged, drift, failures, duration_ms,
                     report, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                rusqlite::params![
                    at.timestamp(),
                    run.ok,
                    run.commit,
                    n(run.applied),
                    n(run.unchanged),
                    n(run.drift),
                    serde_json::to_string(&run.failures).unwrap_or_default(),
                    i64::try_from(run.duration_ms).unwrap_or(i64::MAX),
                    report,
                    now.timestamp(),
                ],
            )?;
            let seq = tx.last_insert_rowid();
            tx.execute("DELETE FROM reconciler_runs WHERE seq <= ?1", [seq - MAX_RUNS_KEPT])?;
            let row = tx.query_row(
                "SELECT seq, report, at, received_at FROM reconciler_runs WHERE seq = ?1",
                [seq],
                run_json,
            )?;
            Ok((row, None))
        })
        .await?;
    // The run may have applied merged requests: they move along before the answer, so
    // the reconciler's caller sees them applied (and done) when its run returns.
    if let Err(e) = advance_requests(&app).await {
        tracing::warn!(code = e.code, error = e.message, "credit requests could not be moved along");
    }
    Ok((StatusCode::CREATED, axum::Json(row)).into_response())
}

/// `GET /v1/reconciler/status` (admin): the last run and the runs before it (newest first).
pub async fn get_status(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let runs = app
        .store
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, report, at, received_at FROM reconciler_runs ORDER BY seq DESC LIMIT ?1",
            )?;
            Ok(stmt.query_map([RUNS_SHOWN], run_json)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(axum::Json(StatusOut { last: runs.first().cloned(), runs }).into_response())
}

// ---------------------------------------------------------------------------
// Credit requests on their way to done

/// Open requests looked at per check, newest first: a request moves within seconds of
/// being proposed, so only this many proposals left unmerged could hide an older one.
const ADVANCE_BATCH: i64 = 2000;
/// Successful runs a merged request is matched against (newest first).
const ADVANCE_RUNS: i64 = 200;
/// How often the server checks whether proposed requests were merged.
pub(crate) const ADVANCE_EVERY: Duration = Duration::from_secs(5);
/// How the audit log names the server when it moves a request along by itself.
const SERVER_ACTOR: &str = "budgit serve";

/// One open request: where it is and what it waits on.
struct Open {
    id: i64,
    email: String,
    status: String,
    commit: String,
    override_name: Option<String>,
}

/// A step reached: the new status and its lifecycle entry.
struct Step {
    id: i64,
    from: String,
    to: &'static str,
    entry: Value,
    commit: Option<String>,
}

/// True when `commit` is `tip` or one of its ancestors.
fn reachable(git: &GitRepo, tip: &str, commit: &str) -> bool {
    let (Ok(tip), Ok(commit)) = (git2::Oid::from_str(tip), git2::Oid::from_str(commit)) else {
        return false;
    };
    tip == commit || git.raw().graph_descendant_of(tip, commit).unwrap_or(false)
}

/// The steps each open request has reached: `proposed → merged` when its commit is
/// reachable from the approved ref, `merged → applied` when a successful reconcile run
/// recorded a commit that contains it, `applied → done` when the server's applied
/// limit for the person comes from the request's Override. Several steps can be
/// reached at once (a merge and the run that applied it); each gets its entry.
fn steps(
    repo: Option<&Path>,
    approved_ref: &str,
    open: &[Open],
    runs: &[(i64, String, i64)],
    sources: &HashMap<String, String>,
    now: i64,
) -> Vec<Step> {
    let git = repo.and_then(|r| GitRepo::discover(r).ok());
    let approved = git.as_ref().and_then(|g| g.commit(approved_ref).ok().map(|c| c.id().to_string()));
    let mut out = Vec::new();
    for o in open {
        let mut status = o.status.as_str();
        if status == "proposed"
            && let (Some(git), Some(tip)) = (&git, &approved)
            && reachable(git, tip, &o.commit)
        {
            out.push(Step {
                id: o.id,
                from: status.to_string(),
                to: "merged",
                entry: json!({ "at": rfc3339(now), "ref": approved_ref, "commit": tip }),
                commit: Some(tip.clone()),
            });
            status = "merged";
        }
        if status == "merged"
            && let Some(git) = &git
            // the earliest successful run whose commit contains the request's
            && let Some((seq, commit, at)) = runs.iter().rev().find(|(_, c, _)| reachable(git, c, &o.commit))
        {
            out.push(Step {
                id: o.id,
                from: status.to_string(),
                to: "applied",
                entry: json!({ "at": rfc3339(*at), "run": seq, "commit": commit }),
                commit: Some(commit.clone()),
            });
            status = "applied";
        }
        if status == "applied"
            && let Some(name) = &o.override_name
            && let Some(source) = sources.get(&o.email)
            && serde_json::from_str::<Value>(source).is_ok_and(|s| {
                s.get("kind").and_then(Value::as_str) == Some("override")
                    && s.get("name").and_then(Value::as_str) == Some(name.as_str())
            })
        {
            out.push(Step {
                id: o.id,
                from: status.to_string(),
                to: "done",
                entry: json!({ "at": rfc3339(now), "override": name }),
                commit: None,
            });
        }
    }
    out
}

/// Moves open credit requests along (merged, applied, done) as far as the policy
/// repository, the reconciler's runs and the applied limits show; returns how many
/// steps were taken. Runs when a reconcile run is recorded and every
/// [`ADVANCE_EVERY`], so a request closes without anyone pressing a button.
pub(crate) async fn advance_requests(app: &App) -> ApiResult<usize> {
    let (open, runs, sources) = app
        .store
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, email, status, proposal FROM requests
                 WHERE status IN ('proposed', 'merged', 'applied') ORDER BY id DESC LIMIT ?1",
            )?;
            let open = stmt
                .query_map([ADVANCE_BATCH], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let open: Vec<Open> = open
                .into_iter()
                .filter_map(|(id, email, status, proposal)| {
                    let p = serde_json::from_str::<Value>(proposal.as_deref()?).ok()?;
                    Some(Open {
                        id,
                        email,
                        status,
                        commit: p.get("commit")?.as_str()?.to_string(),
                        override_name: p.get("override").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect();
            if open.is_empty() {
                return Ok((open, Vec::new(), HashMap::new()));
            }
            let mut stmt = c.prepare_cached(
                "SELECT seq, commit_id, at FROM reconciler_runs WHERE ok = 1 AND commit_id IS NOT NULL
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let runs = stmt
                .query_map([ADVANCE_RUNS], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut sources = HashMap::new();
            let mut stmt = c.prepare_cached("SELECT source FROM limits WHERE email = ?1")?;
            // a proposed request can be merged, applied and done in one pass: every person's source
            for o in &open {
                if let Some(Some(source)) =
                    stmt.query_row([&o.email], |r| r.get::<_, Option<String>>(0)).optional()?
                {
                    sources.insert(o.email.clone(), source);
                }
            }
            Ok((open, runs, sources))
        })
        .await?;
    if open.is_empty() {
        return Ok(0);
    }
    let (repo, approved_ref) = (app.repo.clone(), app.approved_ref.clone());
    let now = crate::unix_now();
    let steps =
        blocking(move || Ok(steps(repo.as_deref(), &approved_ref, &open, &runs, &sources, now))).await?;
    if steps.is_empty() {
        return Ok(0);
    }
    app.store
        .write(move |tx| {
            let mut taken = 0;
            for s in &steps {
                let updated = tx.execute(
                    "UPDATE requests SET status = ?1,
                         lifecycle = json_set(COALESCE(lifecycle, '{}'), '$.' || ?1, json(?2))
                     WHERE id = ?3 AND status = ?4",
                    (s.to, s.entry.to_string(), s.id, &s.from),
                )?;
                if updated == 1 {
                    taken += 1;
                    tx.execute(
                        "INSERT INTO audit (at, actor, action, subject, old, new, commit_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        (
                            now,
                            SERVER_ACTOR,
                            format!("request.{}", s.to),
                            format!("request:{}", s.id),
                            &s.from,
                            s.to,
                            &s.commit,
                        ),
                    )?;
                }
            }
            Ok((taken, None))
        })
        .await
}

/// Checks open credit requests every [`ADVANCE_EVERY`] (a merge happens in git, where
/// the server hears of it only by looking). Only with a policy repository.
pub(crate) async fn watch_requests(app: App) {
    if app.repo.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(ADVANCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if *app.closing.borrow() {
            return;
        }
        if let Err(e) = advance_requests(&app).await {
            tracing::warn!(code = e.code, error = e.message, "credit requests could not be moved along");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_parts_are_safe() {
        assert_eq!(branch_part("Eng Leads/../x"), "eng-leads-x");
        assert_eq!(branch_part("data.science_2"), "data.science_2");
        assert_eq!(branch_part("---"), "group");
    }
}
