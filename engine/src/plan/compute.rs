//! The one plan computation behind `budgit plan`, `budgit request --directory` and the
//! console's proposals: read both sides from git (or the working tree), resolve the
//! head, derive and resolve the base, diff, and name findings' files from the
//! repository root.
//!
//! Where the people come from is the caller's: the CLI reads a directory file and
//! usage files, the console its imported users and its ledger. Both answer through
//! [`People`], so the rest — what is validated, which base is resolved how, which
//! findings the head gets — is decided here once.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::side::{self, LoadedSide, SideError};
use super::{Plan, PlanInput, RefLabel, Side, incremental};
use crate::Credits;
use crate::diag::Report;
use crate::directory::Directory;
use crate::load::{PolicySet, Source};
use crate::model::Workspace;
use crate::resolve::{Resolution, ResolveError, resolve};
use crate::standing::{CapNames, CapUsage};
use crate::validate::{ValidateOptions, check_people, validate_sources};

/// Where the head of a plan is read from.
#[derive(Debug)]
pub enum Head<'a> {
    /// The policy directory in the working tree.
    WorkTree(&'a Path),
    /// A revision (branch, tag or commit).
    Rev(&'a str),
    /// A tree already read and validated (a branch the caller just committed).
    Loaded(LoadedSide),
}

/// How the base side is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Reuse the head's documents and resolve only the users a change can reach.
    Incremental,
    /// Validate and resolve everything again (the reference the incremental plan is
    /// measured and tested against).
    FromScratch,
}

/// Both sides, read: the head validated, the base's sources as committed.
#[derive(Debug, Clone)]
pub struct Sides {
    /// The revision the change starts from, and its policy sources.
    pub base: (RefLabel, Vec<Source>),
    /// The revision with the change, validated.
    pub head: LoadedSide,
}

/// Reads the head (validated) and the base's sources from `git`, the policy directory
/// being `dir` inside the repository.
///
/// A bad base revision is reported before anything is read. The base's files that
/// are the head's (same blob, or same text for a working tree) are taken from the
/// head rather than inflated again, unless `how` is [`Base::FromScratch`].
pub fn read_sides(
    git: &crate::load::git::GitRepo,
    dir: &str,
    base: &str,
    head: Head<'_>,
    how: Base,
    options: &ValidateOptions,
) -> Result<Sides, SideError> {
    git.commit(base)?;
    let (head, head_blobs) = match head {
        Head::Rev(rev) => {
            let (side, blobs) = side::from_git_with_blobs(git, rev, dir, options)?;
            (side, Some(blobs))
        }
        Head::WorkTree(path) => (side::from_dir(path, options)?, None),
        Head::Loaded(side) => (side, None),
    };
    let base = match how {
        Base::FromScratch => side::sources_from_git(git, base, dir)?,
        Base::Incremental => side::base_sources_from_git(
            git,
            base,
            dir,
            &head.validated.policies.sources,
            head_blobs.as_deref(),
        )?,
    };
    Ok(Sides { base, head })
}

/// The people a plan is about: the directory of users and what each used this period.
pub trait People {
    /// Why the people could not be read.
    type Error;

    /// The directory, typed by the head workspace's declared attributes.
    fn directory(&mut self, workspace: &Workspace) -> Result<Directory, Self::Error>;

    /// What each directory user used in the head's current period, by position, and
    /// what they used of each product and model in `caps` (some limit on either side
    /// caps them), so the plan can say whether a cap blocks them before and after.
    fn used(
        &mut self,
        directory: &Directory,
        head: &Resolution,
        caps: CapNames,
    ) -> Result<(Vec<Credits>, CapUsage), Self::Error>;

    /// True when the directory lists everyone, so a person the head names who is not
    /// in it is worth a warning (an override for a typo changes nobody's limit).
    fn complete(&self) -> bool {
        true
    }
}

/// How to plan.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The instant both sides are resolved at.
    pub now: DateTime<Utc>,
    /// List every override starting or expiring soon, not only those the change touches.
    pub all_events: bool,
    /// The policy directory inside the repository, prefixed to findings' files.
    pub root: &'a str,
    /// How the base is resolved.
    pub how: Base,
}

/// A plan and what it was computed from.
#[derive(Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The directory both sides were resolved against.
    pub directory: Directory,
    /// Every user's limit at the head.
    pub head_resolution: Resolution,
    /// The base's documents.
    pub base_policies: PolicySet,
    /// Every user's limit at the base.
    pub base_resolution: Resolution,
    /// What each user used this period.
    pub used: Vec<Credits>,
}

/// What planning gave.
#[derive(Debug)]
pub enum Outcome {
    /// The plan.
    Plan(Box<Planned>),
    /// The head has no usable workspace (or a bad time zone, or similar): its findings
    /// and why. An invalid head is a finding about the change, not a failure to run.
    Unresolvable {
        /// The head's findings.
        report: Report,
        /// Why it cannot be resolved.
        why: String,
    },
}

/// Why a plan could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError<E> {
    /// The people could not be read.
    #[error(transparent)]
    People(E),
    /// The base does not resolve (the head does).
    #[error(transparent)]
    Base(BaseError),
}

/// The base of a plan does not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve the base `{base}`")]
pub struct BaseError {
    /// The base, as shown to a user.
    pub base: String,
    /// Why.
    #[source]
    pub source: ResolveError,
}

/// Resolves both sides at `options.now` against the same people and diffs them.
///
/// `phase` is called after each step with its name (for timings).
pub fn compute<P: People>(
    sides: &Sides,
    people: &mut P,
    options: &Options<'_>,
    phase: &mut dyn FnMut(&'static str),
) -> Result<Outcome, ComputeError<P::Error>> {
    let Options { now, all_events, root, how } = *options;
    let (base_label, base_sources) = &sides.base;
    let head = &sides.head;
    let head_policies = &head.validated.policies;
    let Some(workspace) = head_policies.workspace() else {
        return Ok(Outcome::Unresolvable {
            report: head.validated.report.clone(),
            why: String::from("the policies have no single `Workspace` document"),
        });
    };
    let directory = people.directory(&workspace.doc).map_err(ComputeError::People)?;
    let mut head_report = head.validated.report.clone();
    if people.complete() {
        // As `validate --directory` reports them: warnings of the plan, never errors.
        check_people(head_policies, &head.validated.rejected, &directory, false, &mut head_report);
        head_report.sort();
    }
    phase("read directory");
    let head_resolution = match resolve(head_policies, &directory, now) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::Unresolvable { report: head.validated.report.clone(), why: e.to_string() });
        }
    };
    phase("resolve head");
    let (base_policies, base_resolution) = match how {
        Base::Incremental => {
            let (policies, _) = incremental::load_base(base_sources.clone(), head_policies);
            let resolved =
                incremental::resolve_base(&policies, head_policies, &head_resolution, &directory, now);
            (policies, resolved.map(|(r, _)| r))
        }
        Base::FromScratch => {
            // As a separate evaluation of the base would: nothing parsed for the head is reused.
            crate::select::cache::clear();
            let policies =
                validate_sources(base_sources.clone(), Vec::new(), &ValidateOptions { now }).policies;
            let resolved = resolve(&policies, &directory, now);
            (policies, resolved)
        }
    };
    let base_resolution = base_resolution
        .map_err(|source| ComputeError::Base(BaseError { base: base_label.display(), source }))?;
    phase("load and resolve base");
    let caps = CapNames::of(&[&base_resolution, &head_resolution]);
    let (used, cap_used) = people.used(&directory, &head_resolution, caps).map_err(ComputeError::People)?;
    phase("read usage");
    let mut plan = super::plan(&PlanInput {
        base: Side { label: base_label, policies: &base_policies, resolution: &base_resolution },
        head: Side { label: &head.label, policies: head_policies, resolution: &head_resolution },
        directory: &directory,
        used: &used,
        cap_used: &cap_used,
        head_report: &head_report,
        now,
        all_events,
    });
    phase("plan");
    // Findings name files from the repository root, as CI annotations and reviewers need.
    for d in &mut plan.diagnostics {
        d.under(root);
    }
    Ok(Outcome::Plan(Box::new(Planned {
        plan,
        directory,
        head_resolution,
        base_policies,
        base_resolution,
        used,
    })))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use git2::Repository;

    use super::*;
    use crate::directory::{AttrValue, User};
    use crate::load::git::{FileChange, GitRepo};
    use crate::model::AttributeType;

    const WORKSPACE: &str = "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\nperiod: month\n\
                             default: { credits: 100 }\nattributes: { department: string }\n";
    const ENG: &str = "apiVersion: budgit/v1\nkind: Group\nname: eng\nselector: 'user.department == \"Eng\"'\n\
                       limit:\n  credits: 1000\n";

    /// A directory of two engineers, each having used 900 credits.
    struct Two {
        complete: bool,
    }

    impl People for Two {
        type Error = std::convert::Infallible;

        fn directory(&mut self, workspace: &Workspace) -> Result<Directory, Self::Error> {
            let attributes: &BTreeMap<String, AttributeType> = &workspace.attributes;
            let mut dir = Directory::new(attributes);
            for email in ["ann@acme.com", "bob@acme.com"] {
                dir.push(User { email: email.into(), attrs: vec![AttrValue::String("Eng".into())] });
            }
            Ok(dir)
        }

        fn used(
            &mut self,
            dir: &Directory,
            _head: &Resolution,
            caps: CapNames,
        ) -> Result<(Vec<Credits>, CapUsage), Self::Error> {
            Ok((vec![Credits::from_whole(900); dir.len()], CapUsage::new(caps, dir.len())))
        }

        fn complete(&self) -> bool {
            self.complete
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
    }

    /// A repository whose `main` has the workspace and `eng`, and a branch `change`
    /// lowering `eng` below what its members used and adding an override for someone
    /// the directory does not list.
    fn repo() -> (tempfile::TempDir, GitRepo) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let sig = git2::Signature::new("Ada", "ada@acme.com", &git2::Time::new(1_790_000_000, 0)).unwrap();
        let mut index = repo.index().unwrap();
        for (path, text) in [("policies/workspace.yaml", WORKSPACE), ("policies/groups/eng.yaml", ENG)] {
            std::fs::create_dir_all(tmp.path().join(path).parent().unwrap()).unwrap();
            std::fs::write(tmp.path().join(path), text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "first", &tree, &[]).unwrap();
        let git = GitRepo::discover(tmp.path()).unwrap();
        let lowered = ENG.replace("credits: 1000", "credits: 800");
        let typo = "apiVersion: budgit/v1\nkind: Override\nname: typo\nuser: anne@acme.com\nadd: { credits: 5 }\n\
                    starts: 2026-11-01\nexpires: 2026-11-30\nreason: launch\n";
        let changes = [
            FileChange::Write { path: "policies/groups/eng.yaml", content: &lowered },
            FileChange::Create { path: "policies/overrides/typo.yaml", content: typo },
        ];
        git.commit_changes("HEAD", "change", &changes, "lower eng").unwrap();
        (tmp, git)
    }

    fn options(how: Base) -> Options<'static> {
        Options { now: now(), all_events: false, root: "policies", how }
    }

    fn planned(sides: &Sides, people: &mut Two, how: Base) -> Box<Planned> {
        match compute(sides, people, &options(how), &mut |_| {}).unwrap() {
            Outcome::Plan(p) => p,
            Outcome::Unresolvable { why, .. } => panic!("unresolvable: {why}"),
        }
    }

    #[test]
    fn one_computation_whatever_the_head_is_read_from() {
        let (_tmp, git) = repo();
        let validate = ValidateOptions { now: now() };
        let read = |head: Head<'_>, how| read_sides(&git, "policies", "HEAD", head, how, &validate).unwrap();
        let by_rev = read(Head::Rev("change"), Base::Incremental);
        let plan = planned(&by_rev, &mut Two { complete: true }, Base::Incremental).plan;
        assert_eq!((plan.summary.lowered, plan.summary.newly_blocked), (2, 2), "{:?}", plan.summary);
        // The person the directory lacks is a warning of the plan, named from the repository root.
        let warning = plan.diagnostics.iter().find(|d| d.message.contains("anne@acme.com")).unwrap();
        assert_eq!(warning.file.as_deref(), Some("policies/overrides/typo.yaml"));
        assert_eq!(warning.severity.to_string(), "warning");
        // In `validate --format json`'s shape: the label and help come along.
        assert!(warning.label.is_some() && warning.help.is_some(), "{warning:?}");
        // A head the caller validated itself (the console's new branch), and a base
        // resolved from scratch, plan the same.
        let loaded = crate::plan::side::from_git(&git, "change", "policies", &validate).unwrap();
        let by_loaded = read(Head::Loaded(loaded), Base::FromScratch);
        let again = planned(&by_loaded, &mut Two { complete: true }, Base::FromScratch).plan;
        assert_eq!(super::super::render::json(&again), super::super::render::json(&plan));
        // A directory that is known to be partial does not warn about who is missing.
        let partial = planned(&by_rev, &mut Two { complete: false }, Base::Incremental).plan;
        assert!(!partial.diagnostics.iter().any(|d| d.message.contains("anne@acme.com")));
    }

    #[test]
    fn a_bad_base_fails_and_a_head_without_workspace_is_a_finding() {
        let (_tmp, git) = repo();
        let validate = ValidateOptions { now: now() };
        let bad = read_sides(&git, "policies", "nope", Head::Rev("change"), Base::Incremental, &validate);
        assert!(matches!(bad, Err(SideError::Git(crate::load::git::GitError::UnknownRevision { .. }))));
        // The head's tree without its workspace: nothing to resolve, said as a finding.
        let mut sides =
            read_sides(&git, "policies", "HEAD", Head::Rev("change"), Base::Incremental, &validate).unwrap();
        let sources: Vec<Source> = sides
            .head
            .validated
            .policies
            .sources
            .iter()
            .filter(|s| !s.path.starts_with("workspace"))
            .cloned()
            .collect();
        sides.head.validated = validate_sources(sources, Vec::new(), &validate);
        match compute(&sides, &mut Two { complete: true }, &options(Base::Incremental), &mut |_| {}).unwrap()
        {
            Outcome::Unresolvable { why, .. } => assert!(why.contains("`Workspace`"), "{why}"),
            Outcome::Plan(_) => panic!("planned without a workspace"),
        }
    }
}
