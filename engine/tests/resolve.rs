//! Resolution case files: one YAML file per scenario under `resolve_cases/`.
//!
//! Each case holds policy files inline, directory rows, `now`, and the expected
//! limit, source and group of some users. The runner checks those, checks that
//! `explain` decides exactly what `resolve` decides for every user, and
//! snapshots the whole resolution (with the rules each user matched but lost)
//! so a reviewer sees every answer.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

use std::collections::BTreeMap;

use budgit_engine::Credits;
use budgit_engine::directory::{AttrValue, Directory, User};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::resolve::{Considered, OverrideStatus, Resolution, explain, resolve};
use chrono::{DateTime, Utc};
use serde::Deserialize;

mod plain;

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
            let snapshot = plain::Plain(&serde_json::Value::Array(snapshot.clone()));
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

mod laws {
    //! Laws of resolution over random policies: file order never matters, and an
    //! expired or future override never applies.

    use super::*;
    use budgit_engine::model::When;
    use budgit_engine::resolve::SourceKind;
    use proptest::prelude::*;

    const DEPARTMENTS: [&str; 3] = ["Engineering", "Sales", "Finance"];
    const SELECTORS: [&str; 5] = [
        "user.department == \"Engineering\"",
        "user.department != \"Sales\"",
        "\"ai\" in user.idp_groups",
        "user.title.startsWith(\"Staff\")",
        "user.department == \"Finance\" || \"ai\" in user.idp_groups",
    ];
    const DATES: [&str; 5] = ["2026-10-01", "2026-11-01", "2026-11-15", "2026-11-16", "2026-12-01"];

    #[derive(Debug, Clone)]
    struct GroupSpec {
        selector: Option<usize>,
        members: Vec<usize>,
        exclude: Vec<usize>,
        priority: i64,
        credits: u32,
    }

    #[derive(Debug, Clone)]
    struct OverrideSpec {
        user: usize,
        replace: bool,
        credits: u32,
        starts: Option<usize>,
        expires: usize,
    }

    fn group_spec(users: usize) -> impl Strategy<Value = GroupSpec> {
        (
            proptest::option::weighted(0.8, 0..SELECTORS.len()),
            proptest::collection::vec(0..users, 0..3),
            proptest::collection::vec(0..users, 0..3),
            0i64..3,
            prop_oneof![Just(1000u32), Just(2000), Just(3000)],
        )
            .prop_map(|(selector, members, exclude, priority, credits)| GroupSpec {
                selector,
                members,
                exclude,
                priority,
                credits,
            })
    }

    fn override_spec(users: usize) -> impl Strategy<Value = OverrideSpec> {
        (0..users, any::<bool>(), 1u32..5, proptest::option::of(0..DATES.len()), 0..DATES.len()).prop_map(
            |(user, replace, credits, starts, expires)| OverrideSpec {
                user,
                replace,
                credits: credits * 100,
                starts,
                expires,
            },
        )
    }

    const USERS: usize = 12;

    fn email(i: usize) -> String {
        format!("u{i}@acme.com")
    }

    fn build(groups: &[GroupSpec], overrides: &[OverrideSpec], attrs: &[(usize, bool, bool)]) -> Case {
        let list = |v: &[usize]| v.iter().map(|&i| email(i)).collect::<Vec<_>>().join(", ");
        let mut g = String::new();
        for (i, s) in groups.iter().enumerate() {
            g.push_str(&format!(
                "---\napiVersion: budgit/v1\nkind: Group\nname: g{i}\npriority: {}\nmembers: [{}]\nexclude: [{}]\nlimit:\n  credits: {}\n  products: {{ codex: {} }}\n",
                s.priority,
                list(&s.members),
                list(&s.exclude),
                s.credits,
                s.credits / 2
            ));
            if let Some(sel) = s.selector {
                g.push_str(&format!("selector: '{}'\n", SELECTORS[sel]));
            }
        }
        let mut o = String::new();
        for (i, s) in overrides.iter().enumerate() {
            let effect = if s.replace {
                format!("limit: {{ credits: {} }}", s.credits)
            } else {
                format!("add: {{ credits: {}, products: {{ codex: 1 }} }}", s.credits)
            };
            o.push_str(&format!(
                "---\napiVersion: budgit/v1\nkind: Override\nname: o{i}\nuser: {}\n{effect}\nexpires: {}\n",
                email(s.user),
                DATES[s.expires]
            ));
            if let Some(st) = s.starts {
                o.push_str(&format!("starts: {}\n", DATES[st]));
            }
        }
        let mut policies = BTreeMap::new();
        policies.insert(
            "workspace.yaml".to_owned(),
            "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: Asia/Tokyo\ndefault:\n  credits: 500\nattributes:\n  department: string\n  title: string\n  idp_groups: list\n".to_owned(),
        );
        if !groups.is_empty() {
            policies.insert("groups.yaml".to_owned(), g);
        }
        if !overrides.is_empty() {
            policies.insert("overrides.yaml".to_owned(), o);
        }
        let directory = attrs
            .iter()
            .enumerate()
            .map(|(i, &(dept, ai, staff))| {
                let mut row = BTreeMap::new();
                row.insert("email".to_owned(), serde_json::json!(email(i)));
                row.insert("department".to_owned(), serde_json::json!(DEPARTMENTS[dept]));
                row.insert("idp_groups".to_owned(), serde_json::json!(if ai { vec!["ai"] } else { vec![] }));
                // Some users lack a title: the `startsWith` selector fails for them.
                if staff {
                    row.insert("title".to_owned(), serde_json::json!("Staff Engineer"));
                } else if dept != 1 {
                    row.insert("title".to_owned(), serde_json::json!("Engineer"));
                }
                row
            })
            .collect();
        Case { description: String::new(), policies, directory, checks: Vec::new() }
    }

    /// A user's result with indices replaced by names, comparable across orders.
    fn named(res: &Resolution, policies: &PolicySet) -> Vec<(Credits, String, Option<String>, Vec<String>)> {
        res.users
            .iter()
            .map(|r| {
                (
                    r.limit.credits,
                    format!("{:?}/{}/{}:{}", r.source.kind, r.source.name, r.source.file, r.source.line),
                    r.group.map(|g| policies.groups[g].doc.name.clone()),
                    r.considered.iter().map(|c| considered(policies, c)).collect(),
                )
            })
            .collect()
    }

    fn permute<T>(items: &mut Vec<T>, keys: &[u32]) {
        let mut tagged: Vec<(u32, usize, T)> =
            items.drain(..).enumerate().map(|(i, t)| (keys.get(i).copied().unwrap_or(0), i, t)).collect();
        tagged.sort_by_key(|(k, i, _)| (*k, std::cmp::Reverse(*i)));
        items.extend(tagged.into_iter().map(|(_, _, t)| t));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn file_order_never_matters(
            groups in proptest::collection::vec(group_spec(USERS), 0..7),
            overrides in proptest::collection::vec(override_spec(USERS), 0..8),
            attrs in proptest::collection::vec((0usize..3, any::<bool>(), any::<bool>()), USERS),
            group_keys in proptest::collection::vec(any::<u32>(), 7),
            override_keys in proptest::collection::vec(any::<u32>(), 8),
            now_day in 0usize..DATES.len(),
            now_secs in 0i64..86_400,
        ) {
            let case = build(&groups, &overrides, &attrs);
            let policies = load(&case);
            let dir = directory(&case, &policies);
            let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
            let day = When::parse(DATES[now_day]).unwrap().instant(&tz);
            // Around a date boundary: the day before to the day after, by the second.
            let now = day + chrono::Duration::seconds(now_secs * 2 - 86_400);
            let res = resolve(&policies, &dir, now).unwrap();

            let mut shuffled = policies.clone();
            permute(&mut shuffled.groups, &group_keys);
            permute(&mut shuffled.overrides, &override_keys);
            let again = resolve(&shuffled, &dir, now).unwrap();
            prop_assert_eq!(named(&res, &policies), named(&again, &shuffled));

            for r in &res.users {
                // An override decides only while `starts <= now < expires`.
                if r.source.kind == SourceKind::Override {
                    let o = policies.overrides.iter().find(|o| *o.doc.name == *r.source.name).unwrap();
                    prop_assert!(o.doc.starts.is_none_or(|s| s.instant(&tz) <= now));
                    prop_assert!(now < o.doc.expires.instant(&tz));
                    prop_assert_eq!(&o.doc.user, &dir.users[r.user].email);
                }
                // `explain` evaluates each selector through the interpreter for this one user,
                // where `resolve` uses the bulk path: they must agree.
                let ex = explain(&policies, &dir, &dir.users[r.user].email, now).unwrap();
                prop_assert_eq!(&ex.resolved, r);
            }
        }
    }
}

/// A synthetic organisation at scale: 200 groups with CEL selectors and 2,000
/// overrides. Runs with 2,000 users; set `BUDGIT_SCALE_USERS=100000` and run with
/// `--release -- --nocapture` to measure (timings go to stderr).
#[test]
fn resolves_a_large_organisation() {
    use budgit_engine::resolve::{Memberships, resolve_with};
    use std::fmt::Write as _;
    use std::time::Instant;

    let users: usize = std::env::var("BUDGIT_SCALE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let mut policies = BTreeMap::new();
    policies.insert(
        "workspace.yaml".to_owned(),
        "apiVersion: budgit/v1\nkind: Workspace\nname: big\ntimezone: Europe/Paris\ndefault:\n  credits: 2000\n  products: { codex: 1500 }\nattributes:\n  department: string\n  location: string\n  title: string\n  idp_groups: list\n"
            .to_owned(),
    );
    for k in 0..200 {
        let mut groups = String::new();
        let selector = match k % 4 {
            0 => format!("user.department == \"d{}\"", k % 20),
            1 => format!("user.location == \"l{}\" && user.department != \"d{}\"", k % 10, k % 20),
            2 => format!("\"g{}\" in user.idp_groups", k % 50),
            _ => format!("user.title.startsWith(\"Staff\") && user.location == \"l{}\"", k % 10),
        };
        let _ = write!(
            groups,
            "---\napiVersion: budgit/v1\nkind: Group\nname: g{k:03}\nselector: '{selector}'\npriority: {}\nmembers: [u{}@acme.com]\nexclude: [u{}@acme.com]\nlimit:\n  credits: {}\n  products: {{ codex: {} }}\n",
            k % 7,
            (k * 7919) % users,
            (k * 104_729) % users,
            1000 + (k % 13) * 500,
            500 + (k % 5) * 100,
        );
        policies.insert(format!("groups/g{k:03}.yaml"), groups);
    }
    for i in 0..2000 {
        let mut overrides = String::new();
        let effect = if i % 3 == 0 {
            "limit: { credits: 777 }"
        } else {
            "add: { credits: 1000, products: { codex: 10 } }"
        };
        let (starts, expires) =
            [("2026-11-01", "2026-12-01"), ("2026-12-01", "2026-12-15"), ("2026-10-01", "2026-11-01")][i % 3];
        let _ = write!(
            overrides,
            "---\napiVersion: budgit/v1\nkind: Override\nname: o{i:04}\nuser: u{}@acme.com\n{effect}\nstarts: {starts}\nexpires: {expires}\n",
            (i * 37) % users
        );
        policies.insert(format!("overrides/o{i:04}.yaml"), overrides);
    }
    let rows = (0..users)
        .map(|i| {
            let mut row = BTreeMap::new();
            row.insert("email".to_owned(), serde_json::json!(format!("u{i}@acme.com")));
            row.insert("department".to_owned(), serde_json::json!(format!("d{}", i % 23)));
            row.insert("location".to_owned(), serde_json::json!(format!("l{}", i % 11)));
            row.insert(
                "title".to_owned(),
                serde_json::json!(if i % 5 == 0 { "Staff Engineer" } else { "Engineer" }),
            );
            row.insert(
                "idp_groups".to_owned(),
                serde_json::json!([format!("g{}", i % 53), format!("g{}", i % 7)]),
            );
            row
        })
        .collect();
    let case = Case { description: String::new(), policies, directory: rows, checks: Vec::new() };
    // `BUDGIT_SCALE_ORG=DIR` measures a `budgit gen` organisation instead (DIR/policies, DIR/directory.csv).
    let (policies, dir) = match std::env::var_os("BUDGIT_SCALE_ORG") {
        Some(org) => {
            let org = std::path::PathBuf::from(org);
            let now = parse_now("2026-11-27T12:00:00Z");
            let validated = budgit_engine::validate::validate_dir(
                &org.join("policies"),
                &budgit_engine::validate::ValidateOptions { now },
            )
            .unwrap();
            let attributes = &validated.policies.workspace().unwrap().doc.attributes;
            let (dir, _) =
                budgit_engine::input::read_directory(&org.join("directory.csv"), attributes).unwrap();
            (validated.policies, dir)
        }
        None => {
            let policies = load(&case);
            let dir = directory(&case, &policies);
            (policies, dir)
        }
    };
    let users = dir.len();
    let now = parse_now("2026-11-15T12:00:00Z");

    let started = Instant::now();
    let memberships = Memberships::evaluate(&policies, &dir);
    let selectors = started.elapsed();
    let mut times = Vec::new();
    let mut res = None;
    for _ in 0..5 {
        let started = Instant::now();
        let r = resolve_with(&policies, &dir, &memberships, now).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        res = Some(r);
    }
    let res = res.unwrap();
    times.sort_by(f64::total_cmp);
    eprintln!(
        "resolve: {users} users x {} groups x {} overrides: selectors {:.1} ms, resolution median {:.1} ms (min {:.1}, 5 runs)",
        policies.groups.len(),
        policies.overrides.len(),
        selectors.as_secs_f64() * 1e3,
        times[2],
        times[0]
    );

    assert_eq!(res.users.len(), users);
    let by_override =
        res.users.iter().filter(|r| r.source.kind == budgit_engine::resolve::SourceKind::Override).count();
    assert!(by_override > 0 && by_override <= 2000, "{by_override} users decided by an override");
    // Users decided by the same group share one limit rather than a copy each.
    let shared = res
        .users
        .iter()
        .filter(|r| r.source.kind == budgit_engine::resolve::SourceKind::Group)
        .filter(|r| std::sync::Arc::strong_count(&r.limit) > 2)
        .count();
    assert!(shared > users / 2, "only {shared} users share their group's limit");
    for i in (0..users).step_by((users / 20).max(1)) {
        let ex = explain(&policies, &dir, &dir.users[i].email, now).unwrap();
        assert_eq!(ex.resolved, res.users[i], "explain and resolve disagree on {}", dir.users[i].email);
    }
}
