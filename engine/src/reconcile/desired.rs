//! The desired state: the policies committed at the approved ref, validated and resolved at `now`.
//!
//! Reads git objects only (never the working tree), checks the commit's
//! signature when asked, refuses a ref whose policies fail validation, and
//! resolves every user of the directory (a file, or the workspace's users).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::ReconcileError;
use super::changes::Desired;
use crate::directory::Directory;
use crate::input::directory::{parse_directory, read_directory};
use crate::load::PolicySet;
use crate::load::git::GitRepo;
use crate::resolve::resolve;
use crate::validate::{ValidateOptions, validate_sources};
use crate::workspace::{AppliedSource, LimitSet, Settings, Target, UserRecord};

/// Where the desired state comes from.
pub trait DesiredState {
    /// The desired state now; `workspace` gives the users when no directory file is set.
    fn desired(&self, workspace: &dyn Target) -> Result<Desired, ReconcileError>;
}

/// The policies in a git repository at an approved ref.
#[derive(Debug, Clone)]
pub struct GitDesired {
    /// The policy directory (inside a git working tree, or a path inside a bare repository).
    pub policies: PathBuf,
    /// The approved ref (a protected branch, a tag, a commit).
    pub rev: String,
    /// The instant to resolve at; `None`: the moment each run reads the state, so
    /// a reconciler on a schedule follows the calendar (periods, expiring overrides).
    pub now: Option<DateTime<Utc>>,
    /// A directory file; `None` reads the workspace's users.
    pub directory: Option<PathBuf>,
    /// Refuse commits without a good signature.
    pub require_signed: bool,
    /// The gpg home to verify signatures with (`None`: gpg's default, `GNUPGHOME`).
    pub gpg_home: Option<PathBuf>,
}

impl DesiredState for GitDesired {
    fn desired(&self, workspace: &dyn Target) -> Result<Desired, ReconcileError> {
        let now = self.now.unwrap_or_else(Utc::now);
        let git = GitRepo::discover(&self.policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
        let dir = git.repo_path(&self.policies)?;
        let commit = git.commit(&self.rev)?;
        let sha = commit.id().to_string();
        if self.require_signed {
            verify_signature(git.raw(), commit.id(), self.gpg_home.as_deref())?;
        }
        // Read by commit id: a branch that moves meanwhile cannot mix two states.
        let tree = git.read_policies(&sha, &dir)?;
        let validated = validate_sources(tree.sources, tree.diagnostics, &ValidateOptions { now });
        if validated.report.has_errors() {
            let first = validated
                .report
                .diagnostics
                .iter()
                .find(|d| d.severity == crate::Severity::Error)
                .map(|d| match &d.location {
                    Some(l) => format!("{l}: {} [{}]", d.message, d.code),
                    None => format!("{} [{}]", d.message, d.code),
                })
                .unwrap_or_default();
            return Err(ReconcileError::InvalidPolicy {
                commit: sha,
                errors: validated.report.errors(),
                first,
            });
        }
        let policies = validated.policies;
        let attributes = policies.workspace().map(|w| w.doc.attributes.clone()).unwrap_or_default();
        let directory = match &self.directory {
            Some(path) => {
                read_directory(path, &attributes).map_err(|e| ReconcileError::Directory(e.to_string()))?.0
            }
            None => directory_of(&workspace.users()?, &attributes)?,
        };
        crate::stack::with_large_stack(move || desired_from(&policies, &directory, now, sha))
            .map_err(|e| ReconcileError::Directory(format!("resolution could not run: {e}")))?
    }
}

/// The workspace's users as a directory typed by the declared attributes.
pub fn directory_of(
    users: &[UserRecord],
    attributes: &BTreeMap<String, crate::model::AttributeType>,
) -> Result<Directory, ReconcileError> {
    // Reuse the JSON Lines reader so attributes are typed exactly as from a file.
    let mut text = Vec::new();
    for u in users {
        let mut row = u.attributes.clone();
        row.insert("email".to_string(), serde_json::Value::String(u.email.clone()));
        serde_json::to_writer(&mut text, &row).map_err(|e| ReconcileError::Directory(e.to_string()))?;
        text.push(b'\n');
    }
    let file: Arc<str> = "workspace users".into();
    parse_directory(&file, &text, true, attributes).map(|(d, _)| d).map_err(ReconcileError::Directory)
}

/// Resolves every user at `now` into the desired state.
pub fn desired_from(
    policies: &PolicySet,
    dir: &Directory,
    now: DateTime<Utc>,
    commit: String,
) -> Result<Desired, ReconcileError> {
    let resolution = resolve(policies, dir, now)?;
    let mut limits = BTreeMap::new();
    for r in &resolution.users {
        let Some(user) = dir.users.get(r.user) else { continue };
        let group = r.group.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.clone());
        let source = AppliedSource {
            kind: r.source.kind.as_str().to_string(),
            name: r.source.name.to_string(),
            file: r.source.file.to_string(),
            line: r.source.line,
            // The run's commit goes with the batch; a per-row commit would rewrite every row per commit.
            commit: None,
        };
        limits.insert(
            user.email.clone(),
            LimitSet { user: user.email.clone(), limit: (*r.limit).clone(), group, source: Some(source) },
        );
    }
    let pools = policies
        .groups
        .iter()
        .filter_map(|g| g.doc.pool.as_ref().map(|p| (g.doc.name.clone(), p.credits)))
        .collect();
    let settings = policies.workspace().map(|w| Settings {
        period: w.doc.period,
        timezone: w.doc.timezone.clone(),
        enforcement: w.doc.enforcement,
    });
    Ok(Desired { commit, limits, pools, settings })
}

/// Refuses a commit without a signature, or whose signature `gpg` does not verify.
pub fn verify_signature(
    repo: &git2::Repository,
    commit: git2::Oid,
    gpg_home: Option<&Path>,
) -> Result<(), ReconcileError> {
    let sha = commit.to_string();
    let (signature, data) = repo
        .extract_signature(&commit, None)
        .map_err(|_| ReconcileError::Unsigned { commit: sha.clone() })?;
    let bad = |detail: String| ReconcileError::BadSignature { commit: sha.clone(), detail };
    // gpg reads the signature from a file and the signed data from stdin.
    let sig_path = std::env::temp_dir().join(format!(
        "budgit-sig-{}-{}.asc",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::write(&sig_path, &*signature).map_err(|e| bad(format!("cannot write the signature: {e}")))?;
    let mut gpg = Command::new("gpg");
    if let Some(home) = gpg_home {
        gpg.arg("--homedir").arg(home);
    }
    let child = gpg
        .args(["--batch", "--no-tty", "--status-fd", "1", "--verify"])
        .arg(&sig_path)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let outcome = match child {
        Err(e) => Err(bad(format!("cannot run `gpg` to verify it: {e}"))),
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(&data);
            }
            match child.wait_with_output() {
                Err(e) => Err(bad(format!("`gpg` failed: {e}"))),
                Ok(out) => {
                    let status = String::from_utf8_lossy(&out.stdout);
                    if out.status.success() && status.lines().any(|l| l.contains("[GNUPG:] GOODSIG")) {
                        Ok(())
                    } else {
                        let why = status
                            .lines()
                            .find(|l| l.contains("BADSIG") || l.contains("ERRSIG") || l.contains("NO_PUBKEY"))
                            .map_or("gpg did not report a good signature", |l| {
                                l.trim_start_matches("[GNUPG:] ")
                            });
                        Err(bad(why.to_string()))
                    }
                }
            }
        }
    };
    let _ = std::fs::remove_file(&sig_path);
    outcome
}
