//! `plan`'s newly blocked and unblocked users are what the standings say: the users
//! `evaluate` finds blocked at head and not at base (and the reverse), from the same
//! usage files, including rows dated after `now` that have not happened yet.

use std::collections::BTreeSet;
use std::sync::Arc;

use budgit_engine::diag::Report;
use budgit_engine::evaluate::{EvaluateOptions, evaluate};
use budgit_engine::input::{UsageFormat, parse_directory, parse_usage};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::plan::{PlanInput, RefLabel, Side, plan};
use budgit_engine::resolve::resolve;
use budgit_engine::standing::used_per_user;
use budgit_engine::usage::UsageTable;
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

    let used = used_per_user(&table, dir.len(), &head_res);
    let (bl, hl) = (RefLabel::default(), RefLabel::default());
    let p = plan(&PlanInput {
        base: Side { label: &bl, policies: &base, resolution: &base_res },
        head: Side { label: &hl, policies: &head, resolution: &head_res },
        directory: &dir,
        used: &used,
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
