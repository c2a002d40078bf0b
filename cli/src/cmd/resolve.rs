//! `budgit resolve`: every user's effective limit, with the document that decided it.
//!
//! Flags → validate the policies → read the directory → [`budgit_engine::resolve::resolve`]
//! → a table or the stable JSON shape. The shared loading steps live here too,
//! for `explain`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use budgit_engine::Location;
use budgit_engine::directory::{Directory, Lookup};
use budgit_engine::input::read_directory;
use budgit_engine::load::PolicySet;
use budgit_engine::model::Limit;
use budgit_engine::resolve::{Provenance, Resolution, ResolveOutput, SourceKind, resolve};

use super::Status;
use super::flags::{PolicyArgs, report_input_findings};
use crate::render::{self, DiagContext};

/// Show every user's effective limit and which document decided it.
///
/// An active override wins (`add` adds to the resolved limit, `limit` replaces it),
/// else the highest-priority matching group (ties: more credits, then the name),
/// else the workspace default. Policies are validated first: invalid policies
/// print their diagnostics and exit 1. Exit status 2 when a file cannot be read
/// or `--user` is not in the directory. In JSON, `source.file` is relative to the
/// policy directory.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit resolve --directory examples/directory.csv
  budgit resolve --directory examples/directory.csv --user alice.nguyen@acme.com
  budgit resolve --directory examples/directory.jsonl --now 2026-11-15T12:00:00Z --format json")]
pub struct Args {
    // --policies, --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// The directory of users: CSV (`email,<attributes>`) or JSON Lines (`.jsonl`).
    #[arg(long, value_name = "FILE")]
    directory: PathBuf,
    /// Only this user: an email in the directory, in any spelling (`Alice@ACME.com` is
    /// `alice@acme.com`: emails are compared trimmed, in Unicode NFC and lowercase).
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Output formats of `resolve` and `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Table,
    /// The stable JSON shape.
    Json,
}

/// Valid policies and the directory, ready to resolve.
pub struct Inputs {
    /// The validated policies.
    pub policies: PolicySet,
    /// The users.
    pub dir: Directory,
}

/// Validates the policies and reads the directory. `Ok(Err(status))` when the
/// policies are invalid (their diagnostics are printed on stderr).
pub fn load_inputs(
    policy: &PolicyArgs,
    directory: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Result<Inputs, Status>> {
    let validated = policy.validate(now)?;
    if super::validate::refuse_invalid(&validated, &policy.policies) {
        return Ok(Err(Status::Findings));
    }
    let Some(workspace) = validated.policies.workspace() else {
        anyhow::bail!("the policies have no single `Workspace` document");
    };
    let (dir, findings) = read_directory(directory, &workspace.doc.attributes)?;
    report_input_findings(&findings);
    Ok(Ok(Inputs { policies: validated.policies, dir }))
}

/// The error for an email that is not in the directory, with a suggestion when one is close.
///
/// Any spelling of a directory email finds its user (`Directory::position`), so this is
/// reached only for another address, or one with a character that cannot be seen.
pub fn unknown_user(dir: &Directory, email: &str) -> anyhow::Error {
    let canonical = match budgit_engine::identity::canonical(email) {
        Ok(c) => c,
        Err(e) => return anyhow::anyhow!("{e}"),
    };
    match dir.lookup(&canonical) {
        Lookup::Missing { suggestion: Some(s) } => {
            anyhow::anyhow!("user `{email}` is not in the directory; did you mean `{s}`?")
        }
        _ => anyhow::anyhow!("user `{email}` is not in the directory"),
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let now = args.policy.now();
    let inputs = match load_inputs(&args.policy, &args.directory, now)? {
        Ok(inputs) => inputs,
        Err(status) => return Ok(status),
    };
    let Inputs { policies, dir } = &inputs;
    let only = match &args.user {
        Some(email) => Some(dir.position(email).ok_or_else(|| unknown_user(dir, email))?),
        None => None,
    };
    let resolution = resolve(policies, dir, now)?;
    for f in &resolution.selector_failures {
        let name = policies.groups.get(f.group).map_or("", |g| g.doc.name.as_str());
        match &f.compile_error {
            Some(e) => eprintln!("warning: the selector of group `{name}` selects nobody: {e}"),
            None => eprintln!(
                "warning: the selector of group `{name}` failed for {} and did not match them (`budgit explain USER` shows why)",
                render::plural(f.failed_users, "user")
            ),
        }
    }
    let text = match args.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&ResolveOutput::new(&resolution, policies, dir, only))?;
            s.push('\n');
            s
        }
        Format::Table => table(&resolution, policies, dir, only, &args.policy.policies),
    };
    render::emit(&text)?;
    Ok(Status::Clean)
}

/// `12000 credits` with its caps: `codex 8000, chatgpt 3000; models gpt-5-pro 1000`.
pub fn limit_text(limit: &Limit) -> String {
    let mut out = format!("{} credits", limit.credits);
    let caps = |map: &std::collections::BTreeMap<String, budgit_engine::Credits>| {
        map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    };
    if !limit.products.is_empty() {
        let _ = write!(out, "; products {}", caps(&limit.products));
    }
    if !limit.models.is_empty() {
        let _ = write!(out, "; models {}", caps(&limit.models));
    }
    if let Some(rate) = limit.per_hour {
        let _ = write!(out, "; at most {rate} per hour");
    }
    out
}

/// `policies/groups/eng.yaml:12`, with the commit in front when read from git.
pub fn source_path(
    root: &Path,
    policies: &PolicySet,
    file: &std::sync::Arc<str>,
    line: u32,
    commit: Option<&std::sync::Arc<str>>,
) -> String {
    let context = DiagContext { policies, root, color: false };
    let location =
        Location { file: file.clone(), line, column: 1, offset: 0, len: 0, commit: commit.cloned() };
    format!("{}:{line}", context.path(&location))
}

/// `group engineering` or `default`.
pub fn source_name(source: &Provenance) -> String {
    match source.kind {
        SourceKind::Default => "default".to_owned(),
        kind => format!("{} {}", kind.as_str(), source.name),
    }
}

fn table(
    res: &Resolution,
    policies: &PolicySet,
    dir: &Directory,
    only: Option<usize>,
    root: &Path,
) -> String {
    let mut out = String::new();
    let last_day = res.period.end_date.pred_opt().unwrap_or(res.period.end_date);
    let _ = writeln!(
        out,
        "{} {} to {} ({}), at {}\n",
        match res.period_kind {
            budgit_engine::model::Period::Day => "day",
            budgit_engine::model::Period::Week => "week",
            budgit_engine::model::Period::Month => "month",
            budgit_engine::model::Period::Quarter => "quarter",
        },
        res.period.start_date,
        last_day,
        res.timezone.name(),
        res.now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    let mut rows = vec![vec![
        "USER".to_owned(),
        "CREDITS".to_owned(),
        "CAPS".to_owned(),
        "SOURCE".to_owned(),
        "FILE".to_owned(),
        "GROUP".to_owned(),
    ]];
    let users: Box<dyn Iterator<Item = _>> = match only {
        Some(i) => Box::new(res.user(i).into_iter()),
        None => Box::new(res.users.iter()),
    };
    let (mut by_override, mut by_group, mut by_default) = (0usize, 0usize, 0usize);
    for r in users {
        match r.source.kind {
            SourceKind::Override => by_override += 1,
            SourceKind::Group => by_group += 1,
            SourceKind::Default => by_default += 1,
        }
        let caps = limit_text(&r.limit);
        let mut caps = caps.split_once("; ").map_or(String::new(), |(_, c)| c.to_owned());
        // the rate cap's own source, when it is not the document that decided the limit
        if let Some(s) = r.per_hour_source.as_ref().filter(|s| **s != r.source) {
            let _ = write!(caps, " (rate cap: {})", source_name(s));
        }
        rows.push(vec![
            dir.users.get(r.user).map_or_else(String::new, |u| u.email.clone()),
            r.limit.credits.to_string(),
            caps,
            source_name(&r.source),
            source_path(root, policies, &r.source.file, r.source.line, r.source.commit.as_ref()),
            r.group
                .and_then(|g| policies.groups.get(g))
                .map_or_else(|| "-".to_owned(), |g| g.doc.name.clone()),
        ]);
    }
    out.push_str(&render::columns(&rows, &[1]));
    let total = by_override + by_group + by_default;
    let _ = writeln!(
        out,
        "\n{}: {by_override} by an override, {by_group} by a group, {by_default} by the default",
        render::plural(total, "user"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use budgit_engine::directory::{AttrValue, User};
    use budgit_engine::load::{Source, load_sources};

    const POLICIES: [(&str, &str); 3] = [
        (
            "workspace.yaml",
            "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: America/New_York\ndefault:\n  credits: 2000\n  products: { codex: 1500 }\nattributes:\n  department: string\n",
        ),
        (
            "groups/engineering.yaml",
            "apiVersion: budgit/v1\nkind: Group\nname: engineering\nselector: 'user.department == \"Engineering\"'\npriority: 20\nlimit:\n  credits: 10000.5\n  products: { codex: 8000 }\n  models: { gpt-5-pro: 800 }\n",
        ),
        (
            "overrides/alice.yaml",
            "apiVersion: budgit/v1\nkind: Override\nname: alice-migration\nuser: alice@acme.com\nadd: { credits: 5000 }\nstarts: 2026-11-10\nexpires: 2026-11-24\n",
        ),
    ];

    fn fixture() -> (PolicySet, Directory) {
        let sources = POLICIES
            .iter()
            .map(|(path, text)| Source { path: (*path).into(), text: (*text).into(), commit: None })
            .collect();
        let (policies, findings) =
            budgit_engine::stack::with_large_stack(move || load_sources(sources)).unwrap();
        assert!(findings.is_empty(), "{findings:#?}");
        let mut dir = Directory::new(&policies.workspace().unwrap().doc.attributes);
        for (email, dept) in
            [("alice@acme.com", "Engineering"), ("bob@acme.com", "Engineering"), ("carol@acme.com", "Sales")]
        {
            dir.push(User { email: email.into(), attrs: vec![AttrValue::String(dept.into())] });
        }
        (policies, dir)
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        render::parse_now("2026-11-15T12:00:00Z").unwrap()
    }

    #[test]
    fn table_for_people() {
        let (policies, dir) = fixture();
        let res = resolve(&policies, &dir, now()).unwrap();
        insta::assert_snapshot!(table(&res, &policies, &dir, None, Path::new("policies")));
        let one = table(&res, &policies, &dir, dir.position("carol@acme.com"), Path::new("policies"));
        assert!(one.contains("carol@acme.com") && !one.contains("alice@acme.com"), "{one}");
        assert!(one.ends_with("1 user: 0 by an override, 0 by a group, 1 by the default\n"), "{one}");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let (policies, dir) = fixture();
        let res = resolve(&policies, &dir, now()).unwrap();
        let v = serde_json::to_value(ResolveOutput::new(&res, &policies, &dir, None)).unwrap();
        assert_eq!(v["now"], "2026-11-15T12:00:00Z");
        assert_eq!(v["period"]["start"], "2026-11-01T04:00:00Z");
        assert_eq!(v["period"]["end"], "2026-12-01T05:00:00Z");
        assert_eq!(
            v["users"][0],
            serde_json::json!({
                "user": "alice@acme.com",
                "credits": 15000.5,
                "products": { "codex": 8000 },
                "models": { "gpt-5-pro": 800 },
                "source": { "kind": "override", "name": "alice-migration", "file": "overrides/alice.yaml", "line": 5 },
                "group": "engineering"
            })
        );
        assert_eq!(v["users"][2]["source"]["kind"], "default");
        assert_eq!(v["users"][2]["group"], serde_json::Value::Null);
        // Credits are exact decimals in the text, never float noise.
        let text = serde_json::to_string(&ResolveOutput::new(&res, &policies, &dir, None)).unwrap();
        assert!(text.contains("\"credits\":10000.5,"), "{text}");
    }
}
