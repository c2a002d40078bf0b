//! The demo's policy repository: the policies embedded in the binary, and the git
//! repository the demo creates from them (or from a policy directory on disk).
//!
//! The console reads groups (with file, line and commit) from this repository
//! and writes proposals to it as branches, so it is a real repository with real
//! commits on `main`, never the project's own work tree.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

use super::DemoError;

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        /// Every file of the example organisation's `policies/`, by its path inside it.
        pub const EMBEDDED: &[(&str, &str)] = &[
            $(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/", $path))),)*
        ];
    };
}

embedded![
    "README.md",
    "workspace.yaml",
    "guardrails.yaml",
    "groups/customer-support.yaml",
    "groups/data-science.yaml",
    "groups/engineering.yaml",
    "groups/executives.yaml",
    "groups/finance-legal.yaml",
    "groups/go-to-market.yaml",
    "groups/interns.yaml",
    "groups/ml-platform.yaml",
    "groups/platform-infra.yaml",
    "groups/product-design.yaml",
    "groups/security.yaml",
    "overrides/alice-payments-cutover.yaml",
    "overrides/alice-payments-migration.yaml",
    "overrides/jordan-demo-buildout.yaml",
    "overrides/marcus-pentest-prep.yaml",
    "overrides/maria-holiday-surge.yaml",
    "overrides/olivia-board-deck.yaml",
    "overrides/priya-capstone.yaml",
    "overrides/raj-fine-tuning-eval.yaml",
    "overrides/sam-hackathon-week.yaml",
    "overrides/tom-design-tokens-codemod.yaml",
    "overrides/wei-warehouse-migration.yaml",
];

/// Alice's raise before the payments migration, as an earlier commit held it: it
/// expired when `alice-payments-migration` started and was removed with the next
/// commit. Only the repository's history has it.
pub const LAPSED: (&str, &str) = (
    "overrides/alice-payments-prep.yaml",
    "# yaml-language-server: $schema=../../schemas/override.schema.json
apiVersion: budgit/v1
kind: Override
name: alice-payments-prep
user: alice.nguyen@acme.com
add:
  credits: 3000
  products: { codex: 2500 }
starts: 2026-09-01
expires: 2026-11-10
reason: Prototyping the ledger API client before the migration (PAY-1190)
requested_by: alice.nguyen@acme.com
",
);

/// The directory inside the repository that holds the policies.
pub const POLICY_DIR: &str = "policies";

/// The approved branch.
pub const BRANCH: &str = "main";

/// The policy files to put in the repository, by path relative to the policy directory.
pub fn policy_files(source: Option<&Path>) -> Result<Vec<(String, Vec<u8>)>, DemoError> {
    let Some(dir) = source else {
        return Ok(EMBEDDED.iter().map(|(p, text)| ((*p).to_string(), text.as_bytes().to_vec())).collect());
    };
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    if out.is_empty() {
        return Err(DemoError::Policies(format!("`{}` holds no policy file", dir.display())));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), DemoError> {
    let io = |e: std::io::Error| DemoError::Policies(format!("cannot read `{}`: {e}", dir.display()));
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        // hidden files and directories (an editor's swap files, a nested `.git`) are not policies
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push((rel, fs::read(&path).map_err(io)?));
        }
    }
    Ok(())
}

/// The repository the demo made or found, with the commit `main` points at.
#[derive(Debug, Clone)]
pub struct DemoRepo {
    /// The repository's work tree.
    pub root: PathBuf,
    /// The policy directory inside it.
    pub policies: PathBuf,
    /// The commit at the head of `main`.
    pub head: String,
}

/// Creates the repository at `root` with the policy files committed on `main`, or
/// reuses the one already there (a restarted demo keeps its branches).
///
/// Two commits, so history has something to show: the workspace and its groups,
/// then the individual overrides. For the example organisation, an override that
/// lapsed comes between them ([`LAPSED`]): Alice's raise before the two she has now,
/// so the drift review finds her renewed back to back through git history.
pub fn create(root: &Path, files: &[(String, Vec<u8>)]) -> Result<DemoRepo, DemoError> {
    let git = |e: git2::Error| DemoError::Repo(e.message().to_string());
    let policies = root.join(POLICY_DIR);
    if root.join(".git").is_dir() {
        let repo = Repository::open(root).map_err(git)?;
        let head = repo.revparse_single(BRANCH).and_then(|o| o.peel_to_commit()).map_err(git)?;
        return Ok(DemoRepo { root: root.to_path_buf(), policies, head: head.id().to_string() });
    }
    let io = |e: std::io::Error| DemoError::Repo(format!("cannot write `{}`: {e}", root.display()));
    fs::create_dir_all(&policies).map_err(io)?;
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head(BRANCH);
    let repo = Repository::init_opts(root, &opts).map_err(git)?;
    let (first, second): (Vec<_>, Vec<_>) = files.iter().partition(|(p, _)| !p.starts_with("overrides/"));
    // the example organisation's history holds the override that lapsed before Alice's two
    let lapsed: Vec<(String, Vec<u8>)> =
        if files.iter().any(|(p, _)| p == "overrides/alice-payments-migration.yaml") {
            vec![(LAPSED.0.to_string(), LAPSED.1.as_bytes().to_vec())]
        } else {
            Vec::new()
        };
    let lapsed: Vec<&(String, Vec<u8>)> = lapsed.iter().collect();
    let mut parent = None;
    for (batch, message, gone) in [
        (first, "Acme workspace: default limits, team groups and pools", None),
        (lapsed, "Override alice-payments-prep: the ledger API client prototype", None),
        (
            second,
            "Overrides: time-boxed credit increases for individual projects",
            Some(LAPSED.0).filter(|p| policies.join(p).is_file()),
        ),
    ] {
        if batch.is_empty() {
            continue;
        }
        for (rel, bytes) in batch {
            let path = policies.join(rel);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io)?;
            }
            fs::write(&path, bytes).map_err(io)?;
        }
        let mut index = repo.index().map_err(git)?;
        if let Some(rel) = gone {
            fs::remove_file(policies.join(rel)).map_err(io)?;
            index.remove_path(&Path::new(POLICY_DIR).join(rel)).map_err(git)?;
        }
        index.add_all([POLICY_DIR], IndexAddOption::DEFAULT, None).map_err(git)?;
        index.write().map_err(git)?;
        let tree = repo.find_tree(index.write_tree().map_err(git)?).map_err(git)?;
        let who = Signature::now("Acme Platform Team", "platform-team@acme.com").map_err(git)?;
        let parents: Vec<git2::Commit<'_>> = match parent {
            Some(id) => vec![repo.find_commit(id).map_err(git)?],
            None => Vec::new(),
        };
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let id = repo.commit(Some("HEAD"), &who, &who, message, &tree, &refs).map_err(git)?;
        parent = Some(id);
    }
    let head =
        parent.map(|id| id.to_string()).ok_or_else(|| DemoError::Repo("no policy file to commit".into()))?;
    Ok(DemoRepo { root: root.to_path_buf(), policies, head })
}
