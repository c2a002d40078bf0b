//! Resolution case files: one YAML file per scenario under `resolve_cases/`.
//!
//! Each case holds policy files inline, directory rows, `now`, and the expected
//! limit, source and group of some users. The runner checks those, checks that
//! `explain` decides exactly what `resolve` decides for every user, and
//! snapshots the whole resolution (with the rules each user matched but lost)
//! so a reviewer sees every answer.

use std::collections::BTreeMap;

use budgit_engine::Credits;
use budgit_engine::directory::{AttrValue, Directory, User};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::resolve::{Considered, OverrideStatus, Resolution, explain, resolve};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the scenario shows.
    description: String,
    /// Policy files by path.
    policies: BTreeMap<String, String>,
    /// Directory rows: `email` and attributes.
    directory: Vec<BTreeMap<String, serde_json::Value>>,
    /// Instants to resolve at, each with its expectations.
    checks: Vec<Check>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    /// The instant resolved at (RFC 3339).
    now: String,
    /// Expected results by email.
    expect: BTreeMap<String, Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    credits: Credits,
    #[serde(default)]
    products: BTreeMap<String, Credits>,
    #[serde(default)]
    models: BTreeMap<String, Credits>,
    /// `default`, `group/<name>` or `override/<name>`.
    source: String,
    /// The winning group, or absent for none.
    #[serde(default)]
    group: Option<String>,
}

fn load(case: &Case) -> PolicySet {
    let sources: Vec<Source> = case
        .policies
        .iter()
        .map(|(path, text)| Source { path: path.as_str().into(), text: text.as_str().into(), commit: None })
        .collect();
    let (policies, diagnostics) =
        budgit_engine::stack::with_large_stack(move || load_sources(sources)).expect("loader thread");
    assert!(diagnostics.is_empty(), "policies do not load: {diagnostics:#?}");
    policies
}

fn directory(case: &Case, policies: &PolicySet) -> Directory {
    let ws = policies.workspace().expect("one workspace");
    let mut dir = Directory::new(&ws.doc.attributes);
    for row in &case.directory {
        let email = row["email"].as_str().expect("email").to_owned();
        let attrs = dir
            .attributes
            .iter()
            .map(|(name, _)| match row.get(name) {
                None | Some(serde_json::Value::Null) => AttrValue::Missing,
                Some(serde_json::Value::String(s)) => AttrValue::String(s.clone()),
                Some(serde_json::Value::Bool(b)) => AttrValue::Bool(*b),
                Some(serde_json::Value::Number(n)) => AttrValue::Number(n.as_f64().expect("number")),
                Some(serde_json::Value::Array(items)) => AttrValue::List(
                    items.iter().map(|i| i.as_str().expect("list of strings").to_owned()).collect(),
                ),
                Some(other) => panic!("unsupported attribute value {other}"),
            })
            .collect();
        assert!(dir.push(User { email, attrs }), "duplicate email in case directory");
    }
    dir
}

fn source_label(r: &budgit_engine::resolve::Resolved) -> String {
    match r.source.kind {
        budgit_engine::resolve::SourceKind::Default => "default".into(),
        kind => format!("{}/{}", kind.as_str(), r.source.name),
    }
}

/// One line per rule a user matched but lost, for the snapshot.
fn considered(policies: &PolicySet, c: &Considered) -> String {
    match *c {
        Considered::Group { index, via, lost } => format!(
            "group/{} ({}): {}",
            policies.groups[index].doc.name,
            serde_json::to_value(via).unwrap().as_str().unwrap(),
            serde_json::to_value(lost).unwrap().as_str().unwrap()
        ),
        Considered::SelectorFailed { index } => {
            format!("group/{}: selector failed", policies.groups[index].doc.name)
        }
        Considered::Override { index, status } => {
            let status = match status {
                OverrideStatus::Overlapped { winner } => {
                    format!("overlapped by `{}`", policies.overrides[winner].doc.name)
                }
                other => serde_json::to_value(other).unwrap()["status"].as_str().unwrap().to_owned(),
            };
            format!("override/{}: {status}", policies.overrides[index].doc.name)
        }
    }
}

fn summary(res: &Resolution, policies: &PolicySet, dir: &Directory) -> serde_json::Value {
    let users: Vec<serde_json::Value> = res
        .users
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "user": dir.users[r.user].email,
                "limit": &*r.limit,
                "source": format!("{} ({}:{})", source_label(r), r.source.file, r.source.line),
                "group": r.group.map(|g| policies.groups[g].doc.name.clone()),
            });
            if !r.considered.is_empty() {
                v["considered"] = r.considered.iter().map(|c| considered(policies, c)).collect();
            }
            v
        })
        .collect();
    serde_json::json!({
        "period": { "start": res.period.start, "end": res.period.end },
        "users": users,
    })
}

fn parse_now(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn read_case(path: &std::path::Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn resolve_cases() {
    insta::glob!("resolve_cases/*.yaml", |path| {
        let case = read_case(path);
        let policies = load(&case);
        let dir = directory(&case, &policies);
        let mut snapshot = Vec::new();
        for check in &case.checks {
            let now = parse_now(&check.now);
            let res = resolve(&policies, &dir, now).unwrap();
            assert_eq!(res.users.len(), dir.len());
            for (email, want) in &check.expect {
                let pos = dir.position(email).unwrap_or_else(|| panic!("{email} not in the case directory"));
                let got = &res.users[pos];
                let ctx = format!("{} at {}: {email}", path.display(), check.now);
                assert_eq!(got.limit.credits, want.credits, "{ctx}: credits");
                assert_eq!(got.limit.products, want.products, "{ctx}: products");
                assert_eq!(got.limit.models, want.models, "{ctx}: models");
                assert_eq!(source_label(got), want.source, "{ctx}: source");
                let group = got.group.map(|g| policies.groups[g].doc.name.clone());
                assert_eq!(group, want.group, "{ctx}: group");
            }
            // `explain` must decide exactly what `resolve` decided, for every user.
            for (i, user) in dir.users.iter().enumerate() {
                let ex = explain(&policies, &dir, &user.email, now).unwrap();
                assert_eq!(ex.resolved, res.users[i], "explain and resolve disagree on {}", user.email);
                assert_eq!(*ex.resolved.limit, ex.result.limit);
            }
            let mut s = summary(&res, &policies, &dir);
            s["now"] = serde_json::Value::String(check.now.clone());
            snapshot.push(s);
        }
        insta::with_settings!({ description => case.description.trim() }, {
            insta::assert_yaml_snapshot!(snapshot);
        });
    });
}

#[test]
fn provenance_points_at_the_deciding_field() {
    let case = read_case(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/resolve_cases/overrides_add_and_replace.yaml"
    )));
    let policies = load(&case);
    let dir = directory(&case, &policies);
    let res = resolve(&policies, &dir, parse_now(&case.checks[0].now)).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for r in &res.users {
        let text = &case.policies[&*r.source.file];
        let line = text.lines().nth(r.source.line as usize - 1).unwrap().trim_start();
        let fields: &[&str] = match r.source.kind {
            budgit_engine::resolve::SourceKind::Default => &["default:"],
            budgit_engine::resolve::SourceKind::Group => &["limit:"],
            budgit_engine::resolve::SourceKind::Override => &["add:", "limit:"],
        };
        assert!(fields.iter().any(|f| line.starts_with(f)), "{}: line {line:?}", dir.users[r.user].email);
        kinds.insert(r.source.kind.as_str());
    }
    assert_eq!(kinds.len(), 3, "the case should exercise every kind of source");
}
