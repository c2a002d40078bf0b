//! What a vendor target keeps in the policy repository, beside the policies.
//!
//! A vendor's Admin API keeps no record of who set a limit, and offers no lock
//! between two reconcilers, so each vendor target keeps both as refs in the
//! policy repository: an append-only audit log (one commit per write, a single
//! `audit.jsonl` blob of JSON Lines in each) and leases (one ref per lease name,
//! pointing at a blob naming its holder and expiry). Only the refs differ from
//! one target to the next; the entries' shape is each target's own.
//!
//! Both targets follow one rule for a write: an [`INTENT`] entry goes to the
//! audit before the vendor call, and an outcome after it. An intent no outcome
//! followed was left by a run killed (or failed) between the two; [`replay`]
//! hands those back so the target can settle each against the live state: the
//! outcome, marked `recovered`, when the vendor holds the intended value, or
//! [`LAPSED`] when it does not, and never the write a second time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Lease, WorkspaceError};

/// The action of the entry written before a vendor call.
pub(super) const INTENT: &str = "intent";
/// The action settling an intent the vendor does not show as written.
pub(super) const LAPSED: &str = "intent.lapsed";

/// What [`replay`] reads of an audit entry.
pub(super) trait AuditLine: Clone {
    /// `intent`, an outcome, or another action replay skips.
    fn action(&self) -> &str;
    /// The person or scope the entry is about.
    fn subject(&self) -> &str;
    /// Who wrote it (`--actor`).
    fn actor(&self) -> &str;
}

/// The last `set` entry per subject (a `remove` drops the subject), counting only
/// `actor`'s when given, and the intents no outcome (`set`, `remove` or [`LAPSED`])
/// followed, whoever wrote them.
pub(super) fn replay<'a, E: AuditLine + 'a>(
    entries: impl IntoIterator<Item = &'a E>,
    actor: Option<&str>,
    set: &str,
    remove: &str,
) -> (BTreeMap<&'a str, &'a E>, BTreeMap<&'a str, &'a E>) {
    // Borrowed from the entries: an audit of a large organisation holds many.
    let mut last = BTreeMap::new();
    let mut pending = BTreeMap::new();
    for e in entries {
        let action = e.action();
        if action == INTENT {
            pending.insert(e.subject(), e);
            continue;
        }
        if action != set && action != remove && action != LAPSED {
            continue;
        }
        pending.remove(e.subject());
        if actor.is_some_and(|a| a != e.actor()) {
            continue;
        }
        if action == set {
            last.insert(e.subject(), e);
        } else if action == remove {
            last.remove(e.subject());
        }
    }
    (last, pending)
}

/// The outcome that settles an intent: `set` or `remove` when the vendor holds what
/// it intended (`landed`), [`LAPSED`] when it does not.
pub(super) fn settled_action<'a>(landed: bool, removal: bool, set: &'a str, remove: &'a str) -> &'a str {
    match (landed, removal) {
        (false, _) => LAPSED,
        (true, false) => set,
        (true, true) => remove,
    }
}

/// The file each audit commit holds.
const AUDIT_FILE: &str = "audit.jsonl";

/// The lock, even when a thread panicked holding it: the state behind it is a cache
/// or a repository handle, both still usable.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn protocol(e: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Protocol(e.to_string())
}

/// The time an audit entry records, to the second.
pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The repository holding `path`, where the audit and the leases are kept.
pub(super) fn open_repo(path: &Path) -> Result<git2::Repository, WorkspaceError> {
    git2::Repository::discover(path)
        .map_err(|e| protocol(format!("cannot open the policy repository for the audit: {}", e.message())))
}

/// The audit log on `audit_ref`, oldest first; none when the ref does not exist yet.
pub(super) fn read_audit<T: DeserializeOwned>(
    repo: &git2::Repository,
    audit_ref: &str,
) -> Result<Vec<T>, WorkspaceError> {
    let tip = match repo.find_reference(audit_ref) {
        Ok(r) => r.target(),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(protocol(format!("cannot read the audit: {}", e.message()))),
    };
    let mut commits = Vec::new();
    let mut next = tip;
    while let Some(id) = next {
        let commit = repo.find_commit(id).map_err(|e| protocol(e.message()))?;
        next = commit.parent_ids().next();
        commits.push(commit);
    }
    let mut out = Vec::new();
    for commit in commits.iter().rev() {
        let tree = commit.tree().map_err(|e| protocol(e.message()))?;
        let Some(entry) = tree.get_name(AUDIT_FILE) else { continue };
        let blob = repo.find_blob(entry.id()).map_err(|e| protocol(e.message()))?;
        for line in blob.content().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.push(serde_json::from_slice(line).map_err(|e| protocol(format!("audit entry: {e}")))?);
        }
    }
    Ok(out)
}

/// Appends `entries` to the audit as one commit on `audit_ref` with `message`. The ref
/// moves only if no other writer moved it since it was read, so no entry is lost.
pub(super) fn append_audit<T: Serialize>(
    repo: &git2::Repository,
    audit_ref: &str,
    entries: &[T],
    message: &str,
) -> Result<(), WorkspaceError> {
    let mut text = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut text, e).map_err(protocol)?;
        text.push(b'\n');
    }
    let fail = |e: git2::Error| protocol(format!("cannot write the audit: {}", e.message()));
    let blob = repo.blob(&text).map_err(fail)?;
    let mut tree = repo.treebuilder(None).map_err(fail)?;
    tree.insert(AUDIT_FILE, blob, 0o100644).map_err(fail)?;
    let tree = repo.find_tree(tree.write().map_err(fail)?).map_err(fail)?;
    let parent = match repo.find_reference(audit_ref) {
        Ok(r) => r.target().and_then(|id| repo.find_commit(id).ok()),
        Err(_) => None,
    };
    let who = git2::Signature::now("budgit", "budgit@localhost").map_err(fail)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo.commit(None, &who, &who, message, &tree, &parents).map_err(fail)?;
    match &parent {
        Some(p) => repo.reference_matching(audit_ref, id, true, p.id(), "budgit audit").map_err(fail)?,
        None => repo.reference(audit_ref, id, false, "budgit audit").map_err(fail)?,
    };
    Ok(())
}

/// What a lease ref points at.
#[derive(Serialize, Deserialize)]
struct LeaseBody {
    holder: String,
    /// Unix seconds.
    expires_at: i64,
}

/// Takes the lease `name` (the ref `{prefix}{name}`) for `holder`, unless someone else
/// holds it and it has not expired. The ref is moved from the value read, so of two
/// reconcilers racing for it only one wins.
pub(super) fn acquire_lease(
    repo: &git2::Repository,
    prefix: &str,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Lease, WorkspaceError> {
    // A compare-and-swap also fails while another taker holds the ref's lock, before its
    // ref can be read: then try again shortly, so the loser names the winner (or wins,
    // when the other write came to nothing).
    const TRIES: u32 = 5;
    for tried in 1..=TRIES {
        if let Some(lease) = take_lease(repo, prefix, name, holder, ttl)? {
            return Ok(lease);
        }
        if tried < TRIES {
            std::thread::sleep(Duration::from_millis(10 << tried));
        }
    }
    Err(WorkspaceError::LeaseHeld {
        name: name.to_string(),
        holder: "another holder".to_string(),
        expires_at: None,
    })
}

/// One try at the lease: `None` when another taker won it but its ref cannot be read
/// yet (its write is under way, or came to nothing).
fn take_lease(
    repo: &git2::Repository,
    prefix: &str,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, WorkspaceError> {
    let refname = format!("{prefix}{name}");
    let fail = |e: git2::Error| protocol(format!("cannot take the lease: {}", e.message()));
    let now = chrono::Utc::now().timestamp();
    let current = match repo.find_reference(&refname) {
        Ok(r) => r.target(),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(fail(e)),
    };
    if let Some(id) = current {
        let held: Option<LeaseBody> =
            repo.find_blob(id).ok().and_then(|b| serde_json::from_slice(b.content()).ok());
        if let Some(h) = held
            && h.holder != holder
            && h.expires_at > now
        {
            return Err(WorkspaceError::LeaseHeld {
                name: name.to_string(),
                holder: h.holder,
                expires_at: chrono::DateTime::from_timestamp(h.expires_at, 0).map(|t| t.to_rfc3339()),
            });
        }
    }
    let expires_at = now + i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX / 2);
    let body = serde_json::to_vec(&LeaseBody { holder: holder.to_string(), expires_at }).map_err(protocol)?;
    let blob = repo.blob(&body).map_err(fail)?;
    // Compare-and-swap under the ref's lock in both cases: from the value read, or
    // from none at all (the zero id). A plain create checks that the ref is absent
    // before taking the lock, so two takers racing for a free lease could both win.
    let expected = current.unwrap_or(git2::Oid::ZERO_SHA1);
    let taken = repo.reference_matching(&refname, blob, true, expected, "budgit lease");
    match taken {
        Ok(_) => Ok(Some(Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            expires_at: chrono::DateTime::from_timestamp(expires_at, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
        })),
        // Someone moved the ref between our read and write: they hold it now, and
        // the ref says who (read again).
        Err(_) => {
            let held: Option<LeaseBody> = repo
                .find_reference(&refname)
                .ok()
                .and_then(|r| r.target())
                .and_then(|id| repo.find_blob(id).ok())
                .and_then(|b| serde_json::from_slice(b.content()).ok());
            let Some(held) = held else { return Ok(None) };
            Err(WorkspaceError::LeaseHeld {
                name: name.to_string(),
                holder: held.holder,
                expires_at: chrono::DateTime::from_timestamp(held.expires_at, 0).map(|t| t.to_rfc3339()),
            })
        }
    }
}

/// Gives the lease `name` (the ref `{prefix}{name}`) back, if `holder` holds it; a lease
/// that is gone or someone else's is left as it is.
pub(super) fn release_lease(
    repo: &git2::Repository,
    prefix: &str,
    name: &str,
    holder: &str,
) -> Result<(), WorkspaceError> {
    let refname = format!("{prefix}{name}");
    let Ok(mut r) = repo.find_reference(&refname) else { return Ok(()) };
    let ours = r
        .target()
        .and_then(|id| repo.find_blob(id).ok())
        .and_then(|b| serde_json::from_slice::<LeaseBody>(b.content()).ok())
        .is_some_and(|l| l.holder == holder);
    if ours {
        r.delete().map_err(|e| protocol(format!("cannot release the lease: {}", e.message())))?;
    }
    Ok(())
}
