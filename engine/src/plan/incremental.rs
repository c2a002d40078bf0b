//! The base side of a plan without resolving it from scratch.
//!
//! A pull request changes a few files; a plan resolves the head fully (it must be
//! validated anyway) and derives the base from it: documents of files whose text
//! is identical are reused instead of parsed again, and only the users a changed
//! document can reach are resolved against the base — everyone else has the same
//! limit from the same document on both sides. A user's limit depends only on the
//! documents that can match them (resolution is per user), so this is exact.
//!
//! Reachable users: every user a group that differs matches in either version (at
//! head: read from the head's resolution), and every user named by an override that
//! differs. A changed workspace document (the default, the time zone) reaches
//! everyone: then, or when a selector cannot be compiled, the base is resolved in full.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::FastMap;
use crate::diag::Diagnostic;
use crate::directory::Directory;
use crate::load::{Loaded, PolicySet, Source, load_sources};
use crate::model::{Group, Override};
use crate::resolve::{Considered, Provenance, Resolution, ResolveError, Resolved, SourceKind, resolve};
use crate::select::Selector;

/// The base, loaded reusing the head's documents.
///
/// Files with the same path and text as at head take the head's parsed documents
/// (with the base's commit); the others are parsed. Findings are those of the parsed files only:
/// a plan reports the head's findings, not the base's.
pub fn load_base(sources: Vec<Source>, head: &PolicySet) -> (PolicySet, Vec<Diagnostic>) {
    // Paths are the repository's own: a fast hash is enough for thousands of them.
    let head_text: FastMap<&str, &Arc<str>> = head.sources.iter().map(|s| (&*s.path, &s.text)).collect();
    let mut reused = PolicySet::default();
    let mut fresh = Vec::new();
    let mut same: FastMap<Arc<str>, Option<Arc<str>>> = FastMap::default();
    for source in &sources {
        if head_text.get(&*source.path).is_some_and(|t| **t == source.text) {
            same.insert(source.path.clone(), source.commit.clone());
        } else {
            fresh.push(source.clone());
        }
    }
    fn take<T: Clone>(
        docs: &[Loaded<T>],
        same: &FastMap<Arc<str>, Option<Arc<str>>>,
        out: &mut Vec<Loaded<T>>,
    ) {
        for d in docs {
            if let Some(commit) = same.get(&d.file) {
                out.push(Loaded { commit: commit.clone(), ..d.clone() });
            }
        }
    }
    take(&head.workspaces, &same, &mut reused.workspaces);
    take(&head.groups, &same, &mut reused.groups);
    take(&head.overrides, &same, &mut reused.overrides);
    take(&head.guardrails, &same, &mut reused.guardrails);
    let (parsed, findings) = load_sources(fresh);
    reused.workspaces.extend(parsed.workspaces);
    reused.groups.extend(parsed.groups);
    reused.overrides.extend(parsed.overrides);
    reused.guardrails.extend(parsed.guardrails);
    reused.sources = sources;
    (reused, findings)
}

/// How the base was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseResolution {
    /// Only this many users were resolved against the base.
    Incremental(usize),
    /// Every user was resolved (the workspace changed, or a selector did not compile).
    Full,
}

/// Resolves the base at `now`, re-resolving only the users a difference from the head can reach.
pub fn resolve_base(
    base: &PolicySet,
    head: &PolicySet,
    head_resolution: &Resolution,
    dir: &Directory,
    now: DateTime<Utc>,
) -> Result<(Resolution, BaseResolution), ResolveError> {
    let full = || resolve(base, dir, now).map(|r| (r, BaseResolution::Full));
    let Some(reach) = reachable(base, head, head_resolution, dir) else {
        return full();
    };
    let affected: Vec<usize> = reach.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect();
    if affected.len() * 2 > dir.len() || head_resolution.users.len() != dir.len() {
        return full();
    }
    let sub = dir.subset(&affected);
    // Only the overrides of these users can apply to them (an override applies to the
    // user whose email it names exactly, as resolution looks it up): resolving without the
    // thousands of others spares building a rule for each. Groups keep their indices.
    let relevant = PolicySet {
        sources: Vec::new(),
        workspaces: base.workspaces.clone(),
        groups: base.groups.clone(),
        overrides: base.overrides.iter().filter(|o| sub.position(&o.doc.user).is_some()).cloned().collect(),
        guardrails: Vec::new(),
    };
    let mut partial = resolve(&relevant, &sub, now)?;
    let partial_users = std::mem::take(&mut partial.users);

    // Everyone else keeps the head's answer, with indices and provenance pointing into the base.
    let docs = BaseDocs::of(base);
    // Per head group, its index in the base and (once a user needs it) the base's
    // provenance of its limit: most users get both from their group, so this indexes
    // a vector per user instead of hashing a name.
    let base_group: Vec<Option<usize>> =
        head.groups.iter().map(|g| docs.groups.get(g.doc.name.as_str()).copied()).collect();
    let mut group_provenance: Vec<Option<Provenance>> = vec![None; head.groups.len()];
    // The default has one document, the workspace.
    let mut default_provenance: Option<Provenance> = None;
    // Overrides' provenances keyed by the name's allocation: a resolution clones one
    // provenance per document, so this hashes a pointer instead of the name.
    let mut provenance: FastMap<(SourceKind, *const u8), Provenance> = FastMap::default();
    let mut users = Vec::with_capacity(dir.len());
    let mut next = affected.iter().zip(partial_users).peekable();
    for (i, r) in head_resolution.users.iter().enumerate() {
        if next.peek().is_some_and(|(k, _)| **k == i) {
            if let Some((_, mut resolved)) = next.next() {
                resolved.user = i;
                resolved.considered.clear();
                users.push(resolved);
            }
            continue;
        }
        let group = r.group.and_then(|g| base_group.get(g).copied().flatten());
        // A group provenance names the user's winning group (no override applied):
        // the same document for every user it decided.
        let slot = match (r.source.kind, r.group) {
            (SourceKind::Group, Some(g)) => group_provenance.get_mut(g),
            (SourceKind::Default, _) => Some(&mut default_provenance),
            _ => None,
        };
        let source = match slot {
            Some(slot) => slot.get_or_insert_with(|| base_provenance(base, &docs, &r.source)).clone(),
            None => provenance
                .entry((r.source.kind, Arc::as_ptr(&r.source.name).cast::<u8>()))
                .or_insert_with(|| base_provenance(base, &docs, &r.source))
                .clone(),
        };
        let per_hour_source = r
            .per_hour_source
            .as_ref()
            .map(|p| if *p == r.source { source.clone() } else { base_provenance(base, &docs, p) });
        users.push(Resolved {
            user: i,
            limit: r.limit.clone(),
            source,
            group,
            per_hour_source,
            considered: Vec::new(),
        });
    }
    // The period and time zone come from the same workspace document on both sides.
    let resolution = Resolution { users, ..partial };
    Ok((resolution, BaseResolution::Incremental(affected.len())))
}

/// Which users a difference between the two sets can reach; `None` when everyone can.
///
/// Who matches a group at head is read from the head's resolution (its winners, the
/// users it lost, those its selector failed for), so a group whose selector, members
/// and exclusions did not change costs no selector evaluation; only a base version
/// that matches differently is evaluated.
fn reachable(
    base: &PolicySet,
    head: &PolicySet,
    head_resolution: &Resolution,
    dir: &Directory,
) -> Option<Vec<bool>> {
    let (bw, hw) = (base.workspace()?, head.workspace()?);
    if bw.doc != hw.doc {
        return None;
    }
    let mut reach = vec![false; dir.len()];
    let mark = |reach: &mut Vec<bool>, email: &str| {
        if let Some(i) = dir.position(email) {
            reach[i] = true;
        }
    };
    let (bg, hg) = (groups(base)?, groups(head)?);
    let head_index: FastMap<&str, usize> =
        head.groups.iter().enumerate().map(|(i, g)| (g.doc.name.as_str(), i)).collect();
    let mut changed_at_head = vec![false; head.groups.len()];
    for name in bg.keys().chain(hg.keys()) {
        let (b, h) = (bg.get(name), hg.get(name));
        if let (Some(b), Some(h)) = (b, h)
            && b.doc == h.doc
        {
            continue;
        }
        if h.is_some()
            && let Some(&i) = head_index.get(name)
        {
            changed_at_head[i] = true;
        }
        // The base version matches other users than the head's: evaluate it.
        let Some(b) = b else { continue };
        let same_matching = h.is_some_and(|h| {
            h.doc.selector == b.doc.selector
                && h.doc.members == b.doc.members
                && h.doc.exclude == b.doc.exclude
        });
        if same_matching {
            continue;
        }
        for email in b.doc.members.iter().chain(b.doc.exclude.iter()) {
            mark(&mut reach, email);
        }
        if let Some(expr) = &b.doc.selector {
            let selector = Selector::compile(expr, &dir.attributes).ok()?;
            let matches = selector.matches(dir);
            for i in matches.iter_ones().chain(matches.errors().iter().copied()) {
                if let Some(r) = reach.get_mut(i) {
                    *r = true;
                }
            }
        }
    }
    if changed_at_head.iter().any(|c| *c) {
        let changed = |g: usize| changed_at_head.get(g).copied().unwrap_or(false);
        for (i, r) in head_resolution.users.iter().enumerate() {
            let matched = r.group.is_some_and(changed)
                || r.considered.iter().any(|c| match c {
                    Considered::Group { index, .. } | Considered::SelectorFailed { index } => changed(*index),
                    Considered::Override { .. } => false,
                });
            if matched && let Some(slot) = reach.get_mut(i) {
                *slot = true;
            }
        }
    }
    let (bo, ho) = (overrides(base)?, overrides(head)?);
    for name in bo.keys().chain(ho.keys()) {
        let (b, h) = (bo.get(name), ho.get(name));
        if let (Some(b), Some(h)) = (b, h)
            && b.doc == h.doc
        {
            continue;
        }
        for o in [b, h].into_iter().flatten() {
            mark(&mut reach, &o.doc.user);
        }
    }
    Some(reach)
}

/// The provenance of the same document in the base (it may sit in another file or line).
fn base_provenance(base: &PolicySet, docs: &BaseDocs<'_>, head: &Provenance) -> Provenance {
    let found = match head.kind {
        SourceKind::Default => {
            base.workspace().map(|w| (w.file.clone(), w.key_loc("default").line, w.commit.clone()))
        }
        SourceKind::Group => docs
            .groups
            .get(&*head.name)
            .and_then(|&i| base.groups.get(i))
            .map(|g| (g.file.clone(), g.key_loc("limit").line, g.commit.clone())),
        SourceKind::Override => docs.overrides.get(&*head.name).map(|o| {
            let field = if o.doc.limit.is_some() { "limit" } else { "add" };
            (o.file.clone(), o.key_loc(field).line, o.commit.clone())
        }),
    };
    match found {
        Some((file, line, commit)) => {
            Provenance { kind: head.kind, name: head.name.clone(), file, line, commit }
        }
        None => head.clone(),
    }
}

/// The base's groups (their index) and overrides by name, the first of a name winning
/// as a scan would: every user with an override has a provenance of its own, so looking
/// each up by scanning thousands of overrides was quadratic.
struct BaseDocs<'a> {
    groups: FastMap<&'a str, usize>,
    overrides: FastMap<&'a str, &'a Loaded<Override>>,
}

impl<'a> BaseDocs<'a> {
    fn of(base: &'a PolicySet) -> Self {
        let mut docs = BaseDocs { groups: FastMap::default(), overrides: FastMap::default() };
        for (i, g) in base.groups.iter().enumerate() {
            docs.groups.entry(g.doc.name.as_str()).or_insert(i);
        }
        for o in &base.overrides {
            docs.overrides.entry(o.doc.name.as_str()).or_insert(o);
        }
        docs
    }
}

/// Groups by name; `None` when a name repeats (a validation error: do not guess which one resolution keeps).
///
/// Hashed, not ordered: what [`reachable`] marks does not depend on the order it visits names.
fn groups(set: &PolicySet) -> Option<FastMap<&str, &Loaded<Group>>> {
    let map: FastMap<_, _> = set.groups.iter().map(|g| (g.doc.name.as_str(), g)).collect();
    (map.len() == set.groups.len()).then_some(map)
}

/// Overrides by name; `None` when a name repeats.
fn overrides(set: &PolicySet) -> Option<FastMap<&str, &Loaded<Override>>> {
    let map: FastMap<_, _> = set.overrides.iter().map(|o| (o.doc.name.as_str(), o)).collect();
    (map.len() == set.overrides.len()).then_some(map)
}
