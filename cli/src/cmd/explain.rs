//! `budgit explain USER`: why one user has their limit, as a readable trace.
//!
//! Flags → validate the policies → read the directory →
//! [`budgit_engine::resolve::explain`] → text or JSON. The text is a pure
//! function of the explanation, snapshot-tested below.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use budgit_engine::load::PolicySet;
use budgit_engine::model::LimitAdd;
use budgit_engine::resolve::{
    Explanation, GroupOutcome, GroupTrace, Membership, OverrideOutcome, ResolveError, RuleLimit, explain,
};
use chrono::{DateTime, Utc};

use super::Status;
use super::flags::PolicyArgs;
use super::resolve::{Format, Inputs, limit_text, load_inputs, source_name, source_path, unknown_user};
use crate::render;

/// Explain why a user has their limit: each override and group considered, and why.
///
/// Lists the budget period, every override naming the user (applied, not started,
/// expired, overlapped), every group best rank first (listed member, selector
/// matched or false, excluded, and why a matching group lost: lower priority,
/// fewer credits, or a name that sorts later), and the final limit with the file
/// and line it comes from. Exit status 1 for invalid policies, 2 when a file cannot
/// be read or the user is not in the directory.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit explain alice.nguyen@acme.com --directory examples/directory.csv
  budgit explain omar.haddad@acme.com --directory examples/directory.csv --format json
  budgit explain priya.sharma@acme.com --directory examples/directory.jsonl \\
      --now 2026-11-15T12:00:00Z")]
pub struct Args {
    /// The user's email, in any spelling (compared trimmed, in Unicode NFC and lowercase).
    #[arg(value_name = "USER")]
    user: String,
    // --policies, --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// The directory of users: CSV (`email,<attributes>`) or JSON Lines (`.jsonl`).
    #[arg(long, value_name = "FILE")]
    directory: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let now = args.policy.now();
    let inputs = match load_inputs(&args.policy, &args.directory, now)? {
        Ok(inputs) => inputs,
        Err(status) => return Ok(status),
    };
    let Inputs { policies, dir } = &inputs;
    let explanation = match explain(policies, dir, &args.user, now) {
        Ok(e) => e,
        Err(ResolveError::UnknownUser { email, .. }) => return Err(unknown_user(dir, &email)),
        Err(e) => return Err(e.into()),
    };
    let text = match args.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&explanation)?;
            s.push('\n');
            s
        }
        Format::Table => text(&explanation, policies, &args.policy.policies),
    };
    render::emit(&text)?;
    Ok(Status::Clean)
}

/// An instant in the workspace time zone: `2026-11-10 00:00 EST`.
fn local<Tz: chrono::TimeZone>(t: DateTime<Utc>, tz: Option<&Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match tz {
        Some(tz) => t.with_timezone(tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

fn add_text(add: &LimitAdd) -> String {
    let mut parts = Vec::new();
    if let Some(c) = add.credits {
        parts.push(format!("{c} credits"));
    }
    parts.extend(add.products.iter().chain(&add.models).map(|(k, v)| format!("{v} to the {k} cap")));
    if let Some(rate) = add.per_hour {
        parts.push(format!("{rate} to the rate cap"));
    }
    if parts.is_empty() { "adds nothing".to_owned() } else { format!("adds {}", parts.join(", ")) }
}

fn membership_text(m: Membership) -> &'static str {
    match m {
        Membership::Listed => "listed in members",
        Membership::ListedAndExcluded => "listed in members (and in exclude)",
        Membership::Selected => "selector matched",
        Membership::Excluded => "selector matched, but excluded",
        Membership::SelectorFalse => "selector false",
        Membership::SelectorError => "selector failed",
        Membership::NotListed => "not listed (no selector)",
    }
}

fn outcome_text(g: &GroupTrace, winner: Option<&GroupTrace>) -> String {
    let w = winner.map_or("", |w| w.name.as_str());
    match g.outcome {
        GroupOutcome::Won => "wins".to_owned(),
        GroupOutcome::LowerPriority => format!("loses: lower priority than `{w}`"),
        GroupOutcome::FewerCredits => format!("loses: same priority as `{w}`, fewer credits"),
        GroupOutcome::NameSortsLater => format!("loses: ties with `{w}`, whose name sorts first"),
        GroupOutcome::NotMember => "not a member".to_owned(),
    }
}

fn rule_line(rule: &RuleLimit, policies: &PolicySet, root: &Path) -> String {
    let s = &rule.source;
    format!(
        "{}  ({}, {})",
        limit_text(&rule.limit),
        source_name(s),
        source_path(root, policies, &s.file, s.line, s.commit.as_ref())
    )
}

/// The readable trace.
pub fn text(e: &Explanation, policies: &PolicySet, root: &Path) -> String {
    let tz = budgit_engine::period::parse_timezone(&e.period.timezone);
    let tz = tz.as_ref();
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", e.user, limit_text(&e.result.limit));
    let s = &e.result.source;
    let _ = writeln!(
        out,
        "  decided by {} at {}",
        source_name(s),
        source_path(root, policies, &s.file, s.line, s.commit.as_ref())
    );
    match &e.group {
        Some(g) => {
            let _ = writeln!(out, "  group {g} (its pool, if any, applies)");
        }
        None => {
            let _ = writeln!(out, "  in no group");
        }
    }

    let last_day = e.period.end_date.pred_opt().unwrap_or(e.period.end_date);
    let _ = writeln!(
        out,
        "\nperiod: {} {} to {} in {} ({} to {}), at {}",
        serde_json::to_value(e.period.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        e.period.start_date,
        last_day,
        e.period.timezone,
        local(e.period.start, tz),
        local(e.period.end, tz),
        local(e.now, tz),
    );

    let _ = writeln!(out, "\noverrides for {}:", e.user);
    if e.overrides.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for o in &e.overrides {
        let status = match &o.outcome {
            OverrideOutcome::Applied => "applied".to_owned(),
            OverrideOutcome::Overlapped { winner } => {
                format!("active, but overlaps `{winner}`, which applies")
            }
            OverrideOutcome::NotStarted => "not started yet".to_owned(),
            OverrideOutcome::Expired => "expired".to_owned(),
        };
        let effect = match (&o.limit, &o.add) {
            (Some(l), _) => format!("replaces the limit with {}", limit_text(l)),
            (None, Some(a)) => add_text(a),
            (None, None) => "changes nothing".to_owned(),
        };
        let when = match o.starts {
            Some(t) => format!("from {} until {}", local(t, tz), local(o.expires, tz)),
            None => format!("until {}", local(o.expires, tz)),
        };
        let _ = writeln!(out, "  {}  {status}", o.name);
        let _ = writeln!(out, "      {effect}; {when}");
        let _ = writeln!(out, "      {}", render_path(root, policies, &o.file, o.line));
    }

    let _ = writeln!(out, "\ngroups, best rank first (priority, then credits, then name):");
    if e.groups.is_empty() {
        let _ = writeln!(out, "  none");
    }
    let winner = e.groups.iter().find(|g| g.outcome == GroupOutcome::Won);
    let rows: Vec<[String; 5]> = e
        .groups
        .iter()
        .map(|g| {
            let mut membership = membership_text(g.membership).to_owned();
            if let Some(err) = &g.error {
                let _ = write!(membership, " ({err})");
            }
            [
                format!("{} {}", if g.outcome == GroupOutcome::Won { "*" } else { " " }, g.name),
                format!("priority {}", g.priority),
                format!("{} credits", g.credits),
                membership,
                outcome_text(g, winner),
            ]
        })
        .collect();
    let widths: Vec<usize> =
        (0..4).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if let Some(w) = widths.get(c) {
                line.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }

    let _ = writeln!(out, "\nlimit:");
    let _ = writeln!(out, "  default    {}", rule_line(&e.default, policies, root));
    if e.base.source != e.default.source {
        let _ = writeln!(out, "  group      {}", rule_line(&e.base, policies, root));
    }
    if e.result.source != e.base.source {
        let _ = writeln!(out, "  override   {}", rule_line(&e.result, policies, root));
    }
    let _ = writeln!(out, "  effective  {}", limit_text(&e.result.limit));
    if let (Some(rate), Some(s)) = (e.result.limit.per_hour, &e.per_hour_source) {
        let _ = writeln!(
            out,
            "  rate cap   {rate} credits per hour  ({}, {})",
            source_name(s),
            source_path(root, policies, &s.file, s.line, s.commit.as_ref())
        );
    }

    if !e.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for n in &e.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

fn render_path(root: &Path, policies: &PolicySet, file: &str, line: u32) -> String {
    source_path(root, policies, &std::sync::Arc::from(file), line, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use budgit_engine::directory::{AttrValue, Directory, User};
    use budgit_engine::load::{Source, load_sources};

    const WORKSPACE: &str = "\
apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: America/New_York
default:
  credits: 2000
  products: { codex: 1500 }
attributes:
  department: string
  title: string
";

    const GROUPS: &str = "\
apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
priority: 10
limit:
  credits: 10000
  products: { codex: 8000 }
pool:
  credits: 400000
---
apiVersion: budgit/v1
kind: Group
name: platform
selector: 'user.title.startsWith(\"Staff\")'
priority: 20
limit:
  credits: 15000
  products: { codex: 12000 }
---
apiVersion: budgit/v1
kind: Group
name: platform-lite
selector: 'user.title.startsWith(\"Staff\")'
priority: 20
limit:
  credits: 12000
---
apiVersion: budgit/v1
kind: Group
name: leads
members: [alice@acme.com]
priority: 20
limit:
  credits: 15000
---
apiVersion: budgit/v1
kind: Group
name: sales
selector: 'user.department == \"Sales\"'
priority: 30
limit:
  credits: 4000
---
apiVersion: budgit/v1
kind: Group
name: staff-but-not-alice
selector: 'user.title.startsWith(\"Staff\")'
exclude: [alice@acme.com]
priority: 90
limit:
  credits: 100
";

    const OVERRIDES: &str = "\
apiVersion: budgit/v1
kind: Override
name: alice-migration
user: alice@acme.com
add:
  credits: 5000
  products: { codex: 4000, images: 50 }
starts: 2026-11-10
expires: 2026-11-24
reason: Codex migration of the payments monorepo (PAY-1234)
---
apiVersion: budgit/v1
kind: Override
name: alice-zz-overlap
user: alice@acme.com
add: { credits: 1 }
starts: 2026-11-10
expires: 2026-11-20
---
apiVersion: budgit/v1
kind: Override
name: alice-october
user: alice@acme.com
limit: { credits: 99999 }
starts: 2026-10-01
expires: 2026-11-01
---
apiVersion: budgit/v1
kind: Override
name: alice-december
user: alice@acme.com
add: { credits: 300 }
starts: 2026-12-01
expires: 2026-12-15
---
apiVersion: budgit/v1
kind: Override
name: alice-spelled
user: Alice@ACME.com
add: { credits: 7 }
starts: 2026-12-20
expires: 2026-12-25
";

    fn fixture() -> (PolicySet, Directory) {
        fixture_with(GROUPS, OVERRIDES)
    }

    fn fixture_with(groups: &str, overrides: &str) -> (PolicySet, Directory) {
        let sources =
            [("workspace.yaml", WORKSPACE), ("groups.yaml", groups), ("overrides/alice.yaml", overrides)]
                .into_iter()
                .map(|(path, text)| Source { path: path.into(), text: text.into(), commit: None })
                .collect();
        let (policies, findings) =
            budgit_engine::stack::with_large_stack(move || load_sources(sources)).unwrap();
        assert!(findings.is_empty(), "{findings:#?}");
        let ws = policies.workspace().unwrap();
        let mut dir = Directory::new(&ws.doc.attributes);
        for (email, dept, title) in
            [("alice@acme.com", "Engineering", "Staff Engineer"), ("bob@acme.com", "Finance", "Analyst")]
        {
            dir.push(User {
                email: email.into(),
                attrs: vec![AttrValue::String(dept.into()), AttrValue::String(title.into())],
            });
        }
        (policies, dir)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-15T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn explain_text_for_a_rich_case() {
        let (policies, dir) = fixture();
        let e = explain(&policies, &dir, "alice@acme.com", now()).unwrap();
        insta::assert_snapshot!(text(&e, &policies, Path::new("policies")));
    }

    #[test]
    fn the_rate_cap_names_where_it_comes_from() {
        let leads = "name: leads\nmembers: [alice@acme.com]\npriority: 20\nlimit:\n  credits: 15000\n";
        let groups = GROUPS.replace(leads, &format!("{leads}  per_hour: 400\n"));
        // alice's applied override adds credits, not to the rate cap: it stays the group's
        let (policies, dir) = fixture_with(&groups, OVERRIDES);
        let e = explain(&policies, &dir, "alice@acme.com", now()).unwrap();
        assert_eq!(e.result.limit.per_hour, Some(budgit_engine::Credits::from_whole(400)));
        let rate = e.per_hour_source.as_ref().unwrap();
        assert_eq!((rate.kind, &*rate.name), (budgit_engine::resolve::SourceKind::Group, "leads"));
        let t = text(&e, &policies, Path::new("policies"));
        assert!(t.contains("  rate cap   400 credits per hour  (group leads, policies/groups.yaml:"), "{t}");
        let r = budgit_engine::resolve::resolve(&policies, &dir, now()).unwrap();
        assert_eq!(r.users[0].per_hour_source.as_ref(), Some(rate));

        // an override that adds to the rate cap decides it
        let overrides = OVERRIDES.replace("  credits: 5000\n", "  credits: 5000\n  per_hour: 100\n");
        let (policies, dir) = fixture_with(&groups, &overrides);
        let e = explain(&policies, &dir, "alice@acme.com", now()).unwrap();
        assert_eq!(e.result.limit.per_hour, Some(budgit_engine::Credits::from_whole(500)));
        let rate = e.per_hour_source.as_ref().unwrap();
        assert_eq!(
            (rate.kind, &*rate.name),
            (budgit_engine::resolve::SourceKind::Override, "alice-migration")
        );
        // bob, under the default without a rate cap, has none
        let e = explain(&policies, &dir, "bob@acme.com", now()).unwrap();
        assert_eq!((e.result.limit.per_hour, e.per_hour_source), (None, None));
    }

    #[test]
    fn explain_text_for_a_user_in_no_group() {
        let (policies, dir) = fixture();
        let e = explain(&policies, &dir, "bob@acme.com", now()).unwrap();
        let t = text(&e, &policies, Path::new("policies"));
        assert!(t.starts_with("bob@acme.com: 2000 credits; products codex 1500\n"), "{t}");
        assert!(t.contains("in no group"), "{t}");
        assert!(t.contains("decided by default at policies/workspace.yaml:5"), "{t}");
    }

    #[test]
    fn explain_json_names_every_rule() {
        let (policies, dir) = fixture();
        let e = explain(&policies, &dir, "alice@acme.com", now()).unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["result"]["source"]["kind"], "override");
        assert_eq!(v["result"]["limit"]["credits"], serde_json::json!(20000));
        assert_eq!(v["group"], "leads");
        assert_eq!(v["groups"].as_array().unwrap().len(), 6);
        assert_eq!(v["overrides"].as_array().unwrap().len(), 5);
        let statuses: Vec<&str> =
            v["overrides"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["expired", "applied", "overlapped", "not-started", "not-started"]);
    }

    #[test]
    fn explain_says_a_limit_replaces_the_caps_it_does_not_repeat() {
        // alice's group `leads` gives 15000 and no caps: the default's codex cap is gone.
        let (policies, dir) = fixture();
        let e = explain(&policies, &dir, "alice@acme.com", now()).unwrap();
        let t = text(&e, &policies, Path::new("policies"));
        assert!(
            t.contains(
                "the `limit` of group `leads` replaces the default's whole limit, caps included: \
                 product `codex` (1500) of the default does not apply"
            ),
            "{t}"
        );
        // An override's `limit` replaces the caps of the limit it replaces too.
        let (mut policies, dir) = fixture();
        let bob = "apiVersion: budgit/v1\nkind: Override\nname: bob-flat\nuser: bob@acme.com\n\
                   limit: { credits: 10 }\nexpires: 2026-12-01\nreason: test\n";
        let (more, findings) =
            load_sources(vec![Source { path: "b.yaml".into(), text: bob.into(), commit: None }]);
        assert!(findings.is_empty(), "{findings:#?}");
        policies.overrides.extend(more.overrides);
        let e = explain(&policies, &dir, "bob@acme.com", now()).unwrap();
        let notes = serde_json::to_value(&e).unwrap()["notes"].clone();
        assert_eq!(
            notes,
            serde_json::json!([
                "the `limit` of override `bob-flat` replaces the whole limit, caps included: \
                 product `codex` (1500) of the limit it replaces does not apply"
            ])
        );
    }

    #[test]
    fn unknown_users_get_a_suggestion() {
        let (_, dir) = fixture();
        let err = unknown_user(&dir, "alcie@acme.com").to_string();
        assert_eq!(err, "user `alcie@acme.com` is not in the directory; did you mean `alice@acme.com`?");
        let err = unknown_user(&dir, "ALCIE@acme.com").to_string();
        assert!(err.ends_with("did you mean `alice@acme.com`?"), "{err}");
        let err = unknown_user(&dir, "bob\u{200B}@acme.com").to_string();
        assert!(err.starts_with("`bob\\u{200b}@acme.com` contains a zero-width character, U+200B"), "{err}");
    }
}
