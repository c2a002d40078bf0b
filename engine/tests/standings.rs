//! `plan`'s newly blocked and unblocked users are what the standings say: the users
//! `evaluate` finds blocked at head and not at base (and the reverse), from the same
//! usage files, including rows dated after `now` that have not happened yet; and the
//! products and models whose cap blocks a user at one side and not the other are those
//! `evaluate` finds blocked.

use std::collections::BTreeSet;
use std::sync::Arc;

use budgit_engine::diag::Report;
use budgit_engine::evaluate::{EvaluateOptions, evaluate};
use budgit_engine::input::{UsageFormat, parse_directory, parse_usage};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::plan::{PlanInput, RefLabel, Side, plan};
use budgit_engine::resolve::resolve;
use budgit_engine::standing::{CapNames, used_per_user_with_caps};
use budgit_engine::usage_table::UsageTable;
use chrono::{DateTime, Utc};

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default: { credits: 100 }
attributes: { department: string }
";

fn policies(files: &[(&str, &str)]) -> PolicySet {
    let sources =
        files.iter().map(|(p, t)| Source { path: (*p).into(), text: (*t).into(), commit: None }).collect();
    let (set, findings) = load_sources(sources);
    assert!(findings.is_empty(), "{findings:?}");
    set
}

#[test]
fn newly_blocked_users_are_those_the_standings_block() {
    let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().expect("a date");
    let base = policies(&[
        ("workspace.yaml", WORKSPACE),
        (
            "sales.yaml",
            "apiVersion: budgit/v1\nkind: Group\nname: sales\nselector: 'user.department == \"Sales\"'\n\
             limit: { credits: 100 }\npool: { credits: 50 }\n",
        ),
    ]);
    // eng gets a lower limit; the sales pool gets room.
    let head = policies(&[
        ("workspace.yaml", WORKSPACE),
        (
            "eng.yaml",
            "apiVersion: budgit/v1\nkind: Group\nname: eng\nselector: 'user.department == \"Eng\"'\n\
             limit: { credits: 50 }\n",
        ),
        (
            "sales.yaml",
            "apiVersion: budgit/v1\nkind: Group\nname: sales\nselector: 'user.department == \"Sales\"'\n\
             limit: { credits: 100 }\npool: { credits: 500 }\n",
        ),
    ]);
    let attributes = base.workspace().expect("a workspace").doc.attributes.clone();
    let directory =
        "email,department\nann@acme.com,Eng\nbob@acme.com,Eng\ncat@acme.com,Sales\ndan@acme.com,Sales\n";
    let (dir, findings) =
        parse_directory(&Arc::from("directory.csv"), directory.as_bytes(), false, &attributes)
            .expect("directory");
    assert!(findings.is_empty(), "{findings:?}");
    // bob's 30 credits on the 25th are after `now`: they have not happened yet, so bob
    // (40 used of 50) is not blocked at head.
    let usage = "date,user,product,model,credits\n\
                 2026-11-05,ann@acme.com,codex,gpt-5-codex,60\n\
                 2026-11-06,bob@acme.com,codex,gpt-5-codex,40\n\
                 2026-11-25,bob@acme.com,codex,gpt-5-codex,30\n\
                 2026-11-07,cat@acme.com,chatgpt,gpt-5,30\n\
                 2026-11-08,dan@acme.com,chatgpt,gpt-5,20\n";
    let (base_res, head_res) = (
        resolve(&base, &dir, now).expect("base resolves"),
        resolve(&head, &dir, now).expect("head resolves"),
    );
    let mut table = UsageTable::new(&dir);
    parse_usage(&Arc::from("usage.csv"), usage.as_bytes(), UsageFormat::Csv, &mut table, base_res.timezone)
        .expect("usage");

    let blocked = |set: &PolicySet, resolution| -> BTreeSet<String> {
        let e = evaluate(set, &dir, resolution, &table, EvaluateOptions::default()).expect("evaluates");
        e.users.iter().filter(|u| u.blocked).map(|u| u.user.to_string()).collect()
    };
    let (at_base, at_head) = (blocked(&base, &base_res), blocked(&head, &head_res));
    let want_blocked: BTreeSet<String> = at_head.difference(&at_base).cloned().collect();
    let want_unblocked: BTreeSet<String> = at_base.difference(&at_head).cloned().collect();
    assert_eq!(want_blocked, BTreeSet::from(["ann@acme.com".to_string()]));
    assert_eq!(want_unblocked, BTreeSet::from(["cat@acme.com".to_string(), "dan@acme.com".to_string()]));

    let caps = CapNames::of(&[&base_res, &head_res]);
    let (used, cap_used) = used_per_user_with_caps(&table, dir.len(), &head_res, caps);
    let (bl, hl) = (RefLabel::default(), RefLabel::default());
    let p = plan(&PlanInput {
        base: Side { label: &bl, policies: &base, resolution: &base_res },
        head: Side { label: &hl, policies: &head, resolution: &head_res },
        directory: &dir,
        used: &used,
        cap_used: &cap_used,
        head_report: &Report::default(),
        now,
        all_events: false,
    });
    let got = |f: fn(&budgit_engine::plan::UserChange) -> bool| -> BTreeSet<String> {
        p.users.iter().filter(|u| f(u)).map(|u| u.user.clone()).collect()
    };
    assert_eq!(got(|u| u.newly_blocked), want_blocked);
    assert_eq!(got(|u| u.newly_unblocked), want_unblocked);
    assert_eq!(
        (p.summary.newly_blocked, p.summary.newly_unblocked),
        (want_blocked.len(), want_unblocked.len())
    );
}

#[test]
fn a_cap_that_stops_blocking_is_a_cap_unblock_as_evaluate_sees_it() {
    let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().expect("a date");
    let eng = |codex: u32, model: &str| {
        format!(
            "apiVersion: budgit/v1\nkind: Group\nname: eng\nselector: 'user.department == \"Eng\"'\n\
             limit: {{ credits: 1000, products: {{ codex: {codex} }}{model} }}\n"
        )
    };
    // ann is blocked on Codex alone (her total has room); the head raises the Codex cap
    // by what she asked for, and caps a model bob has already used past the new cap.
    let base_eng = eng(100, "");
    let head_eng = eng(1600, ", models: { gpt-5-pro: 50 }");
    let base = policies(&[("workspace.yaml", WORKSPACE), ("eng.yaml", &base_eng)]);
    let head = policies(&[("workspace.yaml", WORKSPACE), ("eng.yaml", &head_eng)]);
    let attributes = base.workspace().expect("a workspace").doc.attributes.clone();
    let directory = "email,department\nann@acme.com,Eng\nbob@acme.com,Eng\ncat@acme.com,Sales\n";
    let (dir, findings) =
        parse_directory(&Arc::from("directory.csv"), directory.as_bytes(), false, &attributes)
            .expect("directory");
    assert!(findings.is_empty(), "{findings:?}");
    let usage = "date,user,product,model,credits\n\
                 2026-11-05,ann@acme.com,codex,gpt-5-codex,100\n\
                 2026-11-06,bob@acme.com,chatgpt,gpt-5-pro,60\n\
                 2026-11-07,cat@acme.com,codex,gpt-5-codex,100\n";
    let (base_res, head_res) = (
        resolve(&base, &dir, now).expect("base resolves"),
        resolve(&head, &dir, now).expect("head resolves"),
    );
    let mut table = UsageTable::new(&dir);
    parse_usage(&Arc::from("usage.csv"), usage.as_bytes(), UsageFormat::Csv, &mut table, base_res.timezone)
        .expect("usage");

    // What evaluate blocks on each side: (user, product or model) pairs.
    let blocked = |set: &PolicySet, resolution| -> BTreeSet<(String, String)> {
        let e = evaluate(set, &dir, resolution, &table, EvaluateOptions::default()).expect("evaluates");
        e.users
            .iter()
            .flat_map(|u| {
                u.products
                    .iter()
                    .chain(&u.models)
                    .filter(|c| c.blocked)
                    .map(|c| (u.user.to_string(), c.name.to_string()))
            })
            .collect()
    };
    let (at_base, at_head) = (blocked(&base, &base_res), blocked(&head, &head_res));
    assert_eq!(at_base, BTreeSet::from([("ann@acme.com".to_string(), "codex".to_string())]));
    assert_eq!(at_head, BTreeSet::from([("bob@acme.com".to_string(), "gpt-5-pro".to_string())]));

    let caps = CapNames::of(&[&base_res, &head_res]);
    assert_eq!(
        (caps.products.as_slice(), caps.models.as_slice()),
        (&["codex".to_string()][..], &["gpt-5-pro".to_string()][..])
    );
    let (used, cap_used) = used_per_user_with_caps(&table, dir.len(), &head_res, caps);
    let (bl, hl) = (RefLabel::default(), RefLabel::default());
    let p = plan(&PlanInput {
        base: Side { label: &bl, policies: &base, resolution: &base_res },
        head: Side { label: &hl, policies: &head, resolution: &head_res },
        directory: &dir,
        used: &used,
        cap_used: &cap_used,
        head_report: &Report::default(),
        now,
        all_events: false,
    });
    let side = |after: bool| -> BTreeSet<(String, String)> {
        p.users
            .iter()
            .flat_map(|u| {
                u.cap_blocks
                    .iter()
                    .filter(move |c| if after { c.blocked_after } else { c.blocked_before })
                    .map(|c| (u.user.clone(), c.name.clone()))
            })
            .collect()
    };
    assert_eq!(side(false), at_base.difference(&at_head).cloned().collect());
    assert_eq!(side(true), at_head.difference(&at_base).cloned().collect());
    // Neither is blocked on their total: the counts are the cap counts.
    assert_eq!((p.summary.newly_blocked, p.summary.newly_unblocked), (0, 0));
    assert_eq!((p.summary.newly_blocked_on_caps, p.summary.newly_unblocked_on_caps), (1, 1));
    let ann = p.users.iter().find(|u| u.user == "ann@acme.com").expect("ann's cap changes");
    assert_eq!(ann.cap_blocks[0].used.to_string(), "100");
    let text = budgit_engine::plan::render::table(&p);
    assert!(text.contains("codex unblocked"), "{text}");
    assert!(text.contains("gpt-5-pro newly blocked"), "{text}");
}
