//! The GitOps commands on real temporary git repositories: `plan`, `history`,
//! `request`, `owners`, policies read at a revision, and the CI examples.
//!
//! The repository is built with the `git` executable under a fixed author, dates
//! and configuration, so commit ids (and with them the snapshots) are the same on
//! every machine.

use std::path::Path;
use std::process::Command;

use crate::{NOW, Run, budgit, repo_root};

const WORKSPACE: &str = "# yaml-language-server: $schema=../schemas/workspace.schema.json
apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default: { credits: 100 }
attributes: { department: string }
overrides: { max_days: 90, require_reason: true }
";

const GUARDRAIL: &str = "apiVersion: budgit/v1
kind: Guardrail
name: overrides-stay-modest
applies_to: override
rule: '!has(override.add) || override.add.credits <= 4.0 * workspace.default.credits'
message: an override may add at most four times the default
severity: error
";

const DIRECTORY: &str = "email,department
ann@acme.com,Eng
bob@acme.com,Eng
cat@acme.com,Sales
dan@acme.com,Sales
eve@acme.com,Ops
";

const USAGE: &str = "date,user,product,model,credits
2026-11-03,ann@acme.com,codex,gpt-5-codex,1400
2026-11-04,cat@acme.com,chatgpt,gpt-5,450
2026-11-05,eve@acme.com,chatgpt,gpt-5,120
2026-10-30,dan@acme.com,chatgpt,gpt-5,9999
";

fn group(name: &str, selector: &str, credits: u32, priority: u32, owners: &str) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Group\nname: {name}\nselector: '{selector}'\npriority: {priority}\n\
         limit: {{ credits: {credits} }}\nowners: [{owners}]\n"
    )
}

fn eng(credits: u32) -> String {
    group("eng", "user.department == \"Eng\"", credits, 20, "'@acme/eng'")
}

fn sales(selector: &str) -> String {
    group("sales", selector, 500, 10, "'@acme/sales'")
}

fn over(name: &str, user: &str, add: u32, starts: &str, expires: &str) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {user}\nadd: {{ credits: {add} }}\n\
         starts: {starts}\nexpires: {expires}\nreason: test\n"
    )
}

/// Runs git with a fixed identity, clock and no user or system configuration.
pub(crate) fn git(cwd: &Path, args: &[&str], date: &str) {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Admin")
        .env("GIT_AUTHOR_EMAIL", "ada@acme.com")
        .env("GIT_COMMITTER_NAME", "Ada Admin")
        .env("GIT_COMMITTER_EMAIL", "ada@acme.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn write(root: &Path, path: &str, text: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn commit(root: &Path, files: &[(&str, Option<String>)], message: &str, date: &str) {
    for (path, text) in files {
        match text {
            Some(text) => write(root, path, text),
            None => std::fs::remove_file(root.join(path)).unwrap(),
        }
    }
    git(root, &["add", "-A", "policies"], date);
    git(root, &["commit", "-q", "-m", message], date);
    let tag = message.split(':').next().unwrap();
    git(root, &["tag", tag], date);
}

/// A policy repository with one commit (and tag) per kind of change:
/// c1 initial, c2 group raised, c3 override added, c4 override that has since
/// expired, c5 refactor (groups moved into one file), c6 selector change.
pub(crate) fn scenario() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"], "2026-10-01T09:00:00Z");
    write(root, "directory.csv", DIRECTORY);
    write(root, "usage.csv", USAGE);
    let s = |x: &str| Some(x.to_string());
    commit(
        root,
        &[
            ("policies/workspace.yaml", s(WORKSPACE)),
            ("policies/guardrails.yaml", s(GUARDRAIL)),
            ("policies/groups/eng.yaml", Some(eng(1000))),
            ("policies/groups/sales.yaml", Some(sales("user.department == \"Sales\""))),
        ],
        "c1: initial policies",
        "2026-10-01T09:00:00Z",
    );
    commit(
        root,
        &[("policies/groups/eng.yaml", Some(eng(1500)))],
        "c2: raise eng to 1500",
        "2026-10-05T09:00:00Z",
    );
    commit(
        root,
        &[(
            "policies/overrides/ann.yaml",
            Some(over("ann-boost", "ann@acme.com", 300, "2026-11-01", "2026-12-05")),
        )],
        "c3: boost ann for the migration",
        "2026-10-10T09:00:00Z",
    );
    commit(
        root,
        &[(
            "policies/overrides/bob.yaml",
            Some(over("bob-boost", "bob@acme.com", 200, "2026-10-12", "2026-11-15")),
        )],
        "c4: boost bob until mid-november",
        "2026-10-12T09:00:00Z",
    );
    commit(
        root,
        &[
            ("policies/groups/eng.yaml", None),
            ("policies/groups/sales.yaml", None),
            (
                "policies/teams.yaml",
                Some(format!("{}---\n{}", sales("user.department == \"Sales\""), eng(1500))),
            ),
        ],
        "c5: keep all teams in one file",
        "2026-10-20T09:00:00Z",
    );
    commit(
        root,
        &[(
            "policies/teams.yaml",
            Some(format!("{}---\n{}", sales("user.department in [\"Sales\", \"Ops\"]"), eng(1500))),
        )],
        "c6: sales covers ops",
        "2026-10-25T09:00:00Z",
    );
    dir
}

/// A second repository, for what bounds users besides their credits: p1 a capped
/// default, a pooled `eng` and an override of dan's expiring soon; p2 cuts `eng`'s pool
/// (nobody's limit changes); p3 adds an `ops` group whose `limit` replaces the default's
/// (caps included) and an override of eve's starting soon.
pub(crate) fn pools_and_caps_scenario() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"], "2026-10-01T09:00:00Z");
    write(root, "directory.csv", DIRECTORY);
    write(root, "usage.csv", USAGE);
    let capped = WORKSPACE.replace(
        "default: { credits: 100 }",
        "default: { credits: 100, products: { codex: 80 }, models: { gpt-5-pro: 20 } }",
    );
    let pooled = |pool: u32| format!("{}pool: {{ credits: {pool} }}\n", eng(1000));
    commit(
        root,
        &[
            ("policies/workspace.yaml", Some(capped)),
            ("policies/groups/eng.yaml", Some(pooled(1800))),
            ("policies/groups/sales.yaml", Some(sales("user.department == \"Sales\""))),
            (
                "policies/overrides/dan.yaml",
                Some(over("dan-boost", "dan@acme.com", 100, "2026-11-01", "2026-12-05")),
            ),
        ],
        "p1: capped default, pooled eng",
        "2026-10-01T09:00:00Z",
    );
    commit(
        root,
        &[("policies/groups/eng.yaml", Some(pooled(1500)))],
        "p2: cut the eng pool",
        "2026-10-02T09:00:00Z",
    );
    commit(
        root,
        &[
            (
                "policies/groups/ops.yaml",
                Some(group("ops", "user.department == \"Ops\"", 300, 5, "'@acme/ops'")),
            ),
            (
                "policies/overrides/eve.yaml",
                Some(over("eve-onboarding", "eve@acme.com", 50, "2026-12-01", "2026-12-20")),
            ),
        ],
        "p3: an ops group, eve onboarding",
        "2026-10-03T09:00:00Z",
    );
    dir
}

pub(crate) fn plan(cwd: &Path, base: &str, head: Option<&str>, format: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "plan",
        "--base",
        base,
        "--directory",
        "directory.csv",
        "--usage",
        "usage.csv",
        "--now",
        NOW,
        "--format",
        format,
    ];
    if let Some(head) = head {
        args.extend(["--head", head]);
    }
    args.extend(extra);
    budgit(cwd, &args)
}

fn all_formats(cwd: &Path, base: &str, head: &str) -> String {
    let mut out = String::new();
    for format in ["table", "markdown", "json"] {
        out.push_str(&format!(
            "===== --format {format}\n{}\n",
            plan(cwd, base, Some(head), format, &[]).snapshot()
        ));
    }
    out
}

fn json(run: &Run) -> serde_json::Value {
    assert!(run.code == 0 || run.code == 3, "{}", run.snapshot());
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn plan_group_limit_raised() {
    let repo = scenario();
    let v = json(&plan(repo.path(), "c1", Some("c2"), "json", &[]));
    assert_eq!(v["summary"]["raised"], 2);
    assert_eq!(v["summary"]["newly_unblocked"], 1, "ann used 1400 of 1000");
    insta::assert_snapshot!(all_formats(repo.path(), "c1", "c2"));
}

#[test]
fn plan_override_added() {
    let repo = scenario();
    let v = json(&plan(repo.path(), "c2", Some("c3"), "json", &[]));
    assert_eq!(v["overrides"]["added"].as_array().unwrap().len(), 1);
    assert_eq!(v["overrides"]["expiring_soon"][0]["credits_then"], 1500);
    insta::assert_snapshot!(all_formats(repo.path(), "c2", "c3"));
}

#[test]
fn plan_override_already_expired_changes_nothing() {
    let repo = scenario();
    let v = json(&plan(repo.path(), "c3", Some("c4"), "json", &[]));
    assert_eq!(v["users"].as_array().unwrap().len(), 0);
    assert_eq!(v["overrides"]["added"][0]["active"], false);
    insta::assert_snapshot!(all_formats(repo.path(), "c3", "c4"));
}

#[test]
fn plan_refactor_is_no_effective_change() {
    let repo = scenario();
    let table = plan(repo.path(), "c4", Some("c5"), "table", &["--detailed-exitcode"]);
    assert_eq!(table.code, 0, "{}", table.snapshot());
    assert!(table.stdout.contains("no effective change"));
    insta::assert_snapshot!(all_formats(repo.path(), "c4", "c5"));
}

#[test]
fn plan_pool_only_change_is_an_effective_change() {
    let repo = pools_and_caps_scenario();
    let run = plan(repo.path(), "p1", Some("p2"), "json", &["--detailed-exitcode"]);
    assert_eq!(run.code, 3, "{}", run.snapshot());
    let v = json(&run);
    assert_eq!(v["users"].as_array().unwrap().len(), 0, "nobody's limit changes");
    assert_eq!(v["summary"]["pools_lowered"], 1);
    assert_eq!(
        (&v["pools"][0]["before"], &v["pools"][0]["after"]),
        (&serde_json::json!(1800), &serde_json::json!(1500))
    );
    let empty = json(&plan(repo.path(), "p1", Some("p1"), "json", &[]));
    assert_ne!(v["digest"], empty["digest"]);
    insta::assert_snapshot!(all_formats(repo.path(), "p1", "p2"));
}

#[test]
fn plan_group_replacing_the_default_shows_the_caps_it_drops() {
    let repo = pools_and_caps_scenario();
    let v = json(&plan(repo.path(), "p2", Some("p3"), "json", &[]));
    assert_eq!(
        (&v["summary"]["raised"], &v["summary"]["caps_removed"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    let caps: Vec<&str> = v["caps"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(caps, ["codex", "gpt-5-pro"]);
    // eve's onboarding is this change's; dan's expiry is not, and is left out unless asked for.
    let starting = &v["overrides"]["starting_soon"][0];
    assert_eq!(
        (&starting["name"], &starting["limit_before"]["credits"], &starting["limit_after"]["credits"]),
        (&serde_json::json!("eve-onboarding"), &serde_json::json!(300), &serde_json::json!(350))
    );
    assert_eq!(v["overrides"]["expiring_soon"].as_array().unwrap().len(), 0);
    assert_eq!(v["overrides"]["untouched_events"], 1);
    let all = json(&plan(repo.path(), "p2", Some("p3"), "json", &["--all-events"]));
    assert_eq!(all["overrides"]["expiring_soon"][0]["name"], "dan-boost");
    assert_eq!(all["overrides"]["expiring_soon"][0]["touched"], false);
    insta::assert_snapshot!(all_formats(repo.path(), "p2", "p3"));
}

#[test]
fn plan_selector_change_moves_users_between_groups() {
    let repo = scenario();
    let v = json(&plan(repo.path(), "c5", Some("c6"), "json", &[]));
    let sales = v["groups"].as_array().unwrap().iter().find(|g| g["group"] == "sales").unwrap().clone();
    assert_eq!((sales["joined"].as_u64(), sales["members_after"].as_u64()), (Some(1), Some(3)));
    insta::assert_snapshot!(all_formats(repo.path(), "c5", "c6"));
}

#[test]
fn plan_of_a_revision_against_itself_is_empty() {
    let repo = scenario();
    for rev in ["c1", "c2", "c3", "c4", "c5", "c6"] {
        let v = json(&plan(repo.path(), rev, Some(rev), "json", &["--detailed-exitcode"]));
        assert_eq!(v["users"].as_array().unwrap().len(), 0, "{rev}");
        assert_eq!(v["groups"].as_array().unwrap().len(), 0, "{rev}");
        assert_eq!(v["summary"]["exposure_before"], v["summary"]["exposure_after"], "{rev}");
    }
    // The working tree is c6: the default head.
    let run = plan(repo.path(), "c6", None, "table", &["--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    assert!(run.stdout.starts_with("plan: c6 ("), "{}", run.stdout);
    assert!(run.stdout.contains("→ working tree\nno effective change"), "{}", run.stdout);
}

#[test]
fn detailed_exitcode_and_digest_are_stable() {
    let repo = scenario();
    let a = plan(repo.path(), "c1", Some("c6"), "json", &["--detailed-exitcode"]);
    assert_eq!(a.code, 3, "{}", a.snapshot());
    assert_eq!(plan(repo.path(), "c1", Some("c6"), "json", &[]).code, 0);
    // Another clone at another path, same revisions by commit id: same digest.
    let other = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo.path())
        .arg(other.path().join("clone"))
        .status()
        .unwrap();
    assert!(status.success());
    let clone = other.path().join("clone");
    write(&clone, "directory.csv", DIRECTORY);
    write(&clone, "usage.csv", USAGE);
    let c1 = json(&a)["base"]["commit"].as_str().unwrap().to_string();
    let c6 = json(&a)["head"]["commit"].as_str().unwrap().to_string();
    let b = plan(&clone, &c1, Some(&c6), "json", &[]);
    assert_eq!(json(&a)["digest"], json(&b)["digest"]);
    // The digest is a pinned value: a change of the canonical form must be deliberate.
    insta::assert_snapshot!(json(&a)["digest"].as_str().unwrap());
}

#[test]
fn plan_reports_head_errors_with_exit_1() {
    let repo = scenario();
    write(
        repo.path(),
        "policies/overrides/huge.yaml",
        &over("huge", "eve@acme.com", 5000, "2026-11-20", "2026-11-30"),
    );
    let run = plan(repo.path(), "c6", None, "table", &[]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stdout.contains("guardrail/"), "{}", run.stdout);
    insta::assert_snapshot!(run.snapshot());
}

#[test]
fn plan_usage_errors_exit_2() {
    let repo = scenario();
    let run = plan(repo.path(), "no-such-branch", None, "table", &[]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("unknown revision `no-such-branch`"), "{}", run.stderr);
    let not_git = tempfile::tempdir().unwrap();
    let run = budgit(not_git.path(), &["plan", "--base", "main", "--directory", "d.csv", "--now", NOW]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
}

#[test]
fn shallow_clone_names_the_missing_commit() {
    let repo = scenario();
    let other = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    let status = Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(other.path().join("shallow"))
        .status()
        .unwrap();
    assert!(status.success());
    let shallow = other.path().join("shallow");
    write(&shallow, "directory.csv", DIRECTORY);
    write(&shallow, "usage.csv", USAGE);
    let run = plan(&shallow, "HEAD~3", None, "table", &[]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("is not in this clone (shallow?)"), "{}", run.stderr);
    assert!(run.stderr.contains("git fetch --unshallow"), "{}", run.stderr);
}

#[test]
fn history_of_a_user() {
    let repo = scenario();
    let history = |user: &str, format: &str| {
        budgit(
            repo.path(),
            &["history", user, "--directory", "directory.csv", "--now", NOW, "--format", format],
        )
    };
    let bob = history("bob@acme.com", "json");
    assert_eq!(bob.code, 0, "{}", bob.snapshot());
    let v: serde_json::Value = serde_json::from_str(&bob.stdout).unwrap();
    let credits: Vec<_> =
        v["steps"].as_array().unwrap().iter().map(|s| s["limit"]["credits"].clone()).collect();
    assert_eq!(credits, [1000, 1500, 1700, 1500]);
    // Any spelling of the email is the same person, named as the directory names them.
    assert_eq!(history(" Bob@ACME.com", "json").stdout, bob.stdout);
    let eve = history("eve@acme.com", "table");
    assert!(eve.stdout.contains("c6: sales covers ops"), "{}", eve.stdout);
    insta::assert_snapshot!(format!(
        "{}\n{}\n{}",
        history("ann@acme.com", "table").snapshot(),
        bob.snapshot(),
        eve.snapshot()
    ));
    let nobody = history("nobody@acme.com", "table");
    assert_eq!(nobody.code, 2);
}

#[test]
fn request_then_plan_shows_one_new_override() {
    let repo = scenario();
    let request = budgit(
        repo.path(),
        &[
            "request",
            "--user",
            "cat@acme.com",
            "--add",
            "250",
            "--days",
            "10",
            "--reason",
            "quarter close (FIN-7)",
            "--directory",
            "directory.csv",
            "--usage",
            "usage.csv",
            "--now",
            NOW,
        ],
    );
    assert_eq!(request.code, 0, "{}", request.snapshot());
    // The working tree and the index are untouched; the branch holds one new commit.
    assert!(!repo.path().join("policies/overrides/cat-2026-11-27.yaml").exists());
    let branch = "budgit/request/cat-2026-11-27";
    let v = json(&plan(repo.path(), "main", Some(branch), "json", &[]));
    let added = v["overrides"]["added"].as_array().unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["user"], "cat@acme.com");
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
    assert_eq!(v["users"][0]["user"], "cat@acme.com");
    assert_eq!(v["users"][0]["delta"], 250);
    let log = Command::new("git")
        .args(["log", "--format=%s", "-1", branch])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        "Request +250 credits for cat@acme.com until 2026-12-07\n"
    );
    insta::assert_snapshot!(request.snapshot().replace(&short_head(repo.path(), branch), "<commit>"));
}

fn short_head(root: &Path, rev: &str) -> String {
    let out = Command::new("git").args(["rev-parse", "--short=12", rev]).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn request_that_breaks_a_guardrail_commits_nothing() {
    let repo = scenario();
    let run = budgit(
        repo.path(),
        &[
            "request",
            "--user",
            "cat@acme.com",
            "--add",
            "5000",
            "--days",
            "10",
            "--reason",
            "too much",
            "--now",
            NOW,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stdout.contains("guardrail/"), "{}", run.stdout);
    let branches =
        Command::new("git").args(["branch", "--list", "budgit/*"]).current_dir(repo.path()).output().unwrap();
    assert!(branches.stdout.is_empty());
    let too_long = budgit(
        repo.path(),
        &[
            "request",
            "--user",
            "cat@acme.com",
            "--add",
            "5",
            "--days",
            "120",
            "--reason",
            "long",
            "--now",
            NOW,
        ],
    );
    assert_eq!(too_long.code, 1, "{}", too_long.snapshot());
}

#[test]
fn owners_writes_codeowners() {
    let repo = scenario();
    let run = budgit(repo.path(), &["owners", "--default-owner", "@acme/platform"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    insta::assert_snapshot!(run.stdout);
    let out = budgit(repo.path(), &["owners", "--out", ".github/CODEOWNERS"]);
    assert_eq!(out.code, 0);
    let written = std::fs::read_to_string(repo.path().join(".github/CODEOWNERS")).unwrap();
    assert!(written.contains("/policies/teams.yaml @acme/eng @acme/sales\n"), "{written}");
}

/// Every `budgit <command> --flag` the CI examples run exists.
#[test]
fn ci_examples_call_real_commands_and_flags() {
    let root = repo_root();
    let help = budgit(&root, &["--help"]).stdout;
    let mut checked = 0;
    // The GitHub example runs budgit through the action; the release workflow runs the
    // binary it built; the reconcile workflow runs on a schedule.
    for file in [
        "examples/github/budgit.yml",
        "examples/gitlab/.gitlab-ci.yml",
        "action.yml",
        ".github/workflows/release.yml",
        "examples/deploy/github-reconcile.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let nodes = budgit_engine::load::yaml::parse_documents(&file.into(), &text).unwrap();
        assert_eq!(nodes.len(), 1, "{file}");
        let value = nodes[0].to_json();
        assert!(value.is_object(), "{file}");
        let mut scripts = Vec::new();
        strings(&value, &mut scripts);
        for script in scripts {
            // Join continued lines, then look at each `budgit` invocation.
            let joined = script.replace("\\\n", " ");
            for line in joined.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                for (i, w) in words.iter().enumerate() {
                    if *w != "budgit"
                        || i + 1 >= words.len()
                        || !words[i + 1].chars().all(|c| c.is_ascii_lowercase())
                    {
                        continue;
                    }
                    let command = words[i + 1];
                    assert!(
                        help.lines().any(|l| l.trim_start().starts_with(&format!("{command} "))),
                        "{file}: `budgit {command}` is not a command:\n{help}"
                    );
                    let command_help = budgit(&root, &[command, "--help"]).stdout;
                    for flag in words[i + 2..].iter().take_while(|w| !["|", ">", "||", "&&", ";"].contains(w))
                    {
                        if let Some(flag) = flag.strip_prefix("--") {
                            let flag = flag.split('=').next().unwrap();
                            assert!(
                                command_help.contains(&format!("--{flag}")),
                                "{file}: `budgit {command}` has no `--{flag}`"
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4, "only {checked} invocations found");
}

fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The incremental base (reused documents, only reachable users resolved) gives the
/// same plan as validating and resolving the base from scratch, for every pair of commits.
#[test]
fn incremental_plan_equals_from_scratch() {
    let repo = scenario();
    let revs = ["c1", "c2", "c3", "c4", "c5", "c6"];
    for base in revs {
        for head in revs {
            let fast = plan(repo.path(), base, Some(head), "json", &[]);
            let slow = plan(repo.path(), base, Some(head), "json", &["--from-scratch"]);
            assert_eq!(fast.code, slow.code, "{base}..{head}");
            assert_eq!(fast.stdout, slow.stdout, "{base}..{head}");
        }
    }
    let repo = pools_and_caps_scenario();
    let revs = ["p1", "p2", "p3"];
    for base in revs {
        for head in revs {
            for extra in [&[][..], &["--all-events"][..]] {
                let mut fast_args = extra.to_vec();
                let fast = plan(repo.path(), base, Some(head), "json", &fast_args);
                fast_args.push("--from-scratch");
                let slow = plan(repo.path(), base, Some(head), "json", &fast_args);
                assert_eq!(fast.code, slow.code, "{base}..{head}");
                assert_eq!(fast.stdout, slow.stdout, "{base}..{head}");
            }
        }
    }
}

#[test]
fn validate_at_a_revision_ignores_the_working_tree_and_names_the_commit() {
    let repo = scenario();
    // A broken working tree does not matter for `--ref`.
    write(repo.path(), "policies/teams.yaml", "kind: [");
    let tree = budgit(repo.path(), &["validate", "--now", NOW]);
    assert_eq!(tree.code, 1, "{}", tree.snapshot());
    let at = budgit(repo.path(), &["validate", "--ref", "c6", "--now", NOW]);
    assert_eq!(at.code, 0, "{}", at.snapshot());
    // c4's expired-override warning names the commit it was read from.
    let warned = budgit(repo.path(), &["validate", "--ref", "c6", "--now", NOW, "--format", "github"]);
    assert!(warned.stdout.contains("overrides/bob.yaml"), "{}", warned.stdout);
    let human = budgit(repo.path(), &["validate", "--ref", "c6", "--now", NOW]);
    assert!(
        human.stdout.contains(&format!("{}:policies/overrides/bob.yaml", short_head(repo.path(), "c6"))),
        "{}",
        human.stdout
    );
    let missing = budgit(repo.path(), &["validate", "--ref", "nope", "--now", NOW]);
    assert_eq!(missing.code, 2, "{}", missing.snapshot());
}

#[test]
fn plan_of_a_head_without_workspace_is_a_finding() {
    let repo = scenario();
    std::fs::remove_file(repo.path().join("policies/workspace.yaml")).unwrap();
    let run = plan(repo.path(), "c6", None, "table", &[]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stderr.contains("workspace/missing"), "{}", run.stderr);
}

#[test]
fn request_for_someone_outside_the_directory_commits_nothing() {
    let repo = scenario();
    let run = budgit(
        repo.path(),
        &[
            "request",
            "--user",
            "zed@acme.com",
            "--add",
            "5",
            "--days",
            "3",
            "--reason",
            "r",
            "--directory",
            "directory.csv",
            "--now",
            NOW,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stderr.contains("`zed@acme.com` is not in the directory"), "{}", run.stderr);
    let branches =
        Command::new("git").args(["branch", "--list", "budgit/*"]).current_dir(repo.path()).output().unwrap();
    assert!(branches.stdout.is_empty());
}

#[test]
fn resolve_explain_and_evaluate_read_policies_at_a_revision() {
    let repo = scenario();
    // The working tree (c6) gives eng 1500; at c1 eng had 1000 and ann no override yet.
    let at = |cmd: &[&str]| {
        let mut args = cmd.to_vec();
        args.extend(["--directory", "directory.csv", "--now", NOW]);
        budgit(repo.path(), &args)
    };
    let now_tree = at(&["resolve", "--user", "bob@acme.com", "--format", "json"]);
    assert_eq!(now_tree.code, 0, "{}", now_tree.snapshot());
    assert_eq!(json(&now_tree)["users"][0]["credits"], 1500, "{}", now_tree.stdout);
    let then = at(&["resolve", "--ref", "c1", "--user", "bob@acme.com", "--format", "json"]);
    assert_eq!(then.code, 0, "{}", then.snapshot());
    assert_eq!(json(&then)["users"][0]["credits"], 1000, "{}", then.stdout);
    let explained = at(&["explain", "bob@acme.com", "--ref", "c1", "--format", "json"]);
    assert_eq!(explained.code, 0, "{}", explained.snapshot());
    assert!(explained.stdout.contains("1000"), "{}", explained.stdout);
    let evaluated = at(&["evaluate", "--ref", "c1", "--usage", "usage.csv", "--format", "json"]);
    assert_eq!(evaluated.code, 0, "{}", evaluated.snapshot());
    let users = json(&evaluated)["users"].clone();
    let bob = users.as_array().unwrap().iter().find(|u| u["user"] == "bob@acme.com").unwrap().clone();
    assert_eq!(bob["limit"], 1000, "{}", evaluated.stdout);
    let missing = at(&["resolve", "--ref", "nope"]);
    assert_eq!(missing.code, 2, "{}", missing.snapshot());
}

#[test]
fn owners_fails_on_invalid_policies_and_writes_nothing() {
    let repo = scenario();
    // A typo in one group: before, its file silently lost its CODEOWNERS line (exit 0).
    let broken = eng(1500).replace("priority:", "priorty:");
    write(
        repo.path(),
        "policies/teams.yaml",
        &format!("{}---\n{broken}", sales("user.department == \"Sales\"")),
    );
    let run = budgit(repo.path(), &["owners", "--default-owner", "@acme/platform"]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert_eq!(run.stdout, "");
    let out = budgit(repo.path(), &["owners", "--out", ".github/CODEOWNERS"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(!repo.path().join(".github/CODEOWNERS").exists());
    // At a fixed `--now` the findings, expiry warnings included, are the same on any day.
    let fixed = budgit(repo.path(), &["owners", "--now", NOW, "--default-owner", "@acme/platform"]);
    assert_eq!(fixed.code, 1, "{}", fixed.snapshot());
    insta::assert_snapshot!(fixed.stderr);
    // The committed policies are still valid: `--ref` reads them instead of the working tree.
    let committed = budgit(repo.path(), &["owners", "--ref", "HEAD", "--default-owner", "@acme/platform"]);
    assert_eq!(committed.code, 0, "{}", committed.snapshot());
    assert!(
        committed.stdout.ends_with("/policies/ @acme/platform\n/policies/teams.yaml @acme/eng @acme/sales\n"),
        "{}",
        committed.stdout
    );
    // The findings as `validate` renders them (the expiry warnings around them depend on the clock).
    assert!(
        run.stderr.contains(
            "error[schema/unknown-field]: unknown field `priorty`\n  --> policies/teams.yaml:13:1\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with("error: the policies have errors: no CODEOWNERS lines were written\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn history_and_request_report_bad_directory_rows() {
    let repo = scenario();
    // Cat's row has a column too many and is left out of the directory: say so.
    let directory = DIRECTORY.replace("cat@acme.com,Sales", "cat@acme.com,Sales,Finance");
    write(repo.path(), "bad-directory.csv", &directory);
    let history =
        budgit(repo.path(), &["history", "ann@acme.com", "--directory", "bad-directory.csv", "--now", NOW]);
    assert_eq!(history.code, 0, "{}", history.snapshot());
    assert!(history.stderr.contains("bad-directory.csv:4:1: error[directory/bad-row]"), "{}", history.stderr);
    let request = budgit(
        repo.path(),
        &[
            "request",
            "--user",
            "cat@acme.com",
            "--add",
            "5",
            "--days",
            "3",
            "--reason",
            "r",
            "--directory",
            "bad-directory.csv",
            "--now",
            NOW,
        ],
    );
    assert_eq!(request.code, 1, "{}", request.snapshot());
    insta::assert_snapshot!(format!("{}\n{}", history.snapshot(), request.snapshot()));
}

#[test]
fn plan_warns_about_people_not_in_the_directory() {
    let repo = scenario();
    // A typo in the user of a new override: the plan shows no effective change, and says why.
    write(
        repo.path(),
        "policies/overrides/cat.yaml",
        &over("cat-close", "cat@acme.co", 100, "2026-11-20", "2026-12-10"),
    );
    let run = plan(repo.path(), "main", None, "json", &[]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    let v = json(&run);
    let found: Vec<_> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] != "override/expired")
        .map(|d| (d["code"].as_str().unwrap(), d["severity"].as_str().unwrap(), d["help"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("override/unknown-user", "warning", "did you mean `cat@acme.com`?")]);
    assert_eq!(v["users"].as_array().unwrap().len(), 0);
}

#[test]
fn request_usage_error_names_both_amounts() {
    let repo = crate::examples::checkout();
    let run =
        budgit(repo.path(), &["request", "--user", "nora.kim@acme.com", "--days", "3", "--reason", "r"]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("--add <N>") && run.stderr.contains("--limit <N>"), "{}", run.stderr);
    let both = [
        "request",
        "--user",
        "nora.kim@acme.com",
        "--add",
        "5",
        "--limit",
        "9",
        "--days",
        "3",
        "--reason",
        "r",
    ];
    let run = budgit(repo.path(), &both);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[test]
fn a_refused_request_shows_only_what_stops_it() {
    // In March 2027 every example override has expired (a warning each in `validate`);
    // a request for too many days is refused for that alone.
    let repo = crate::examples::checkout();
    let args = [
        "request",
        "--user",
        "nora.kim@acme.com",
        "--add",
        "5",
        "--days",
        "400",
        "--reason",
        "r",
        "--now",
        "2027-03-01T12:00:00Z",
    ];
    let run = budgit(repo.path(), &args);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stdout.contains("error[override/too-long]"), "{}", run.snapshot());
    assert!(!run.stdout.contains("warning"), "unrelated warnings before the refusal:\n{}", run.stdout);
    let validate = budgit(repo.path(), &["validate", "--now", "2027-03-01T12:00:00Z"]);
    assert!(validate.stdout.contains("warning[override/expired]"), "{}", validate.stdout);
}

#[test]
fn an_os_error_is_printed_once() {
    let repo = crate::examples::checkout();
    for args in [
        &["resolve", "--directory", "missing.csv"][..],
        &["evaluate", "--directory", "examples/directory.csv", "--usage", "missing.csv"],
        &[
            "request",
            "--user",
            "nora.kim@acme.com",
            "--add",
            "5",
            "--days",
            "3",
            "--reason",
            "r",
            "--directory",
            "missing.csv",
        ],
    ] {
        let run = budgit(repo.path(), args);
        assert_eq!(run.code, 2, "{}", run.snapshot());
        assert_eq!(run.stderr.matches("os error 2").count(), 1, "{}", run.stderr);
    }
}
