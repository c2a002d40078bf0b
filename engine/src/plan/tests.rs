use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::directory::{AttrValue, User};
use crate::load::{Source, load_sources};
use crate::model::AttributeType;
use crate::resolve::resolve;

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default: { credits: 100 }
attributes: { department: string }
";

fn group(name: &str, dept: &str, credits: u32, priority: i64) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Group\nname: {name}\nselector: 'user.department == \"{dept}\"'\n\
         priority: {priority}\nlimit: {{ credits: {credits} }}\n"
    )
}

fn over(name: &str, user: &str, add: u32, starts: &str, expires: &str) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {user}\nadd: {{ credits: {add} }}\n\
         starts: {starts}\nexpires: {expires}\nreason: test\n"
    )
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn directory() -> Directory {
    let attributes: BTreeMap<String, AttributeType> =
        [("department".to_string(), AttributeType::String)].into();
    let mut dir = Directory::new(&attributes);
    for (email, dept) in [
        ("ann@acme.com", "Eng"),
        ("bob@acme.com", "Eng"),
        ("cat@acme.com", "Sales"),
        ("dan@acme.com", "Sales"),
        ("eve@acme.com", "Ops"),
    ] {
        dir.push(User { email: email.into(), attrs: vec![AttrValue::String(dept.into())] });
    }
    dir
}

fn policies(files: &[(&str, String)]) -> PolicySet {
    let sources = files
        .iter()
        .map(|(p, t)| Source { path: (*p).into(), text: t.as_str().into(), commit: None })
        .collect();
    let (set, findings) = load_sources(sources);
    assert!(findings.is_empty(), "{findings:?}");
    set
}

fn base_files() -> Vec<(&'static str, String)> {
    vec![
        ("workspace.yaml", WORKSPACE.to_string()),
        ("groups/eng.yaml", group("eng", "Eng", 1000, 20)),
        ("groups/sales.yaml", group("sales", "Sales", 500, 10)),
    ]
}

fn run(base: &[(&str, String)], head: &[(&str, String)], used: &[Credits]) -> Plan {
    run_with(base, head, used, false)
}

/// [`run`], listing every override event when `all_events`.
fn run_with(base: &[(&str, String)], head: &[(&str, String)], used: &[Credits], all_events: bool) -> Plan {
    let dir = directory();
    let (bp, hp) = (policies(base), policies(head));
    let br = resolve(&bp, &dir, now()).unwrap();
    let hr = resolve(&hp, &dir, now()).unwrap();
    let (bl, hl) = (
        RefLabel { name: Some("main".into()), commit: Some("a".repeat(40)) },
        RefLabel { name: None, commit: None },
    );
    let report = Report::default();
    let full = plan(&PlanInput {
        base: Side { label: &bl, policies: &bp, resolution: &br },
        head: Side { label: &hl, policies: &hp, resolution: &hr },
        directory: &dir,
        used,
        cap_used: &CapUsage::default(),
        head_report: &report,
        now: now(),
        all_events,
    });
    // The incremental base (reused documents, only reachable users resolved) plans the same.
    let (ip, findings) = incremental::load_base(bp.sources.clone(), &hp);
    assert!(findings.is_empty());
    let (ir, _) = incremental::resolve_base(&ip, &hp, &hr, &dir, now()).unwrap();
    let fast = plan(&PlanInput {
        base: Side { label: &bl, policies: &ip, resolution: &ir },
        head: Side { label: &hl, policies: &hp, resolution: &hr },
        directory: &dir,
        used,
        cap_used: &CapUsage::default(),
        head_report: &report,
        now: now(),
        all_events,
    });
    assert_eq!(render::json(&fast), render::json(&full));
    full
}

#[test]
fn a_plan_of_a_side_against_itself_is_empty() {
    let p = run(&base_files(), &base_files(), &[]);
    assert!(p.is_empty());
    assert!(p.groups.is_empty());
    assert_eq!(p.summary.exposure_before, p.summary.exposure_after);
    assert_eq!(p.summary.unchanged, 5);
    assert_eq!(p.digest, digest(&[], &[]));
    assert!(markdown(&p).contains("**No effective change**"));
}

use render::markdown;

#[test]
fn raising_a_group_counts_users_exposure_and_unblocks() {
    let mut head = base_files();
    head[1].1 = group("eng", "Eng", 1500, 20);
    let used = [Credits::from_whole(1200), Credits::from_whole(10)];
    let p = run(&base_files(), &head, &used);
    assert_eq!(p.summary.users_affected, 2);
    assert_eq!(p.summary.raised, 2);
    assert_eq!(p.summary.exposure_before, Credits::from_whole(1000 * 2 + 500 * 2 + 100));
    assert_eq!(p.summary.exposure_after, Credits::from_whole(1500 * 2 + 500 * 2 + 100));
    assert_eq!(p.summary.newly_unblocked, 1);
    assert!(p.users[0].newly_unblocked && p.users[0].user == "ann@acme.com");
    assert_eq!(p.users[0].delta, Credits::from_whole(500));
    assert_eq!(p.groups.len(), 1);
    assert_eq!(p.groups[0].status, DocStatus::Changed);
    assert_eq!(p.groups[0].changes, ["limit"]);
    assert_eq!(p.groups[0].users_affected, 2);
    assert_eq!(p.groups[0].delta, Credits::from_whole(1000));
}

#[test]
fn lowering_below_usage_blocks() {
    let mut head = base_files();
    head[2].1 = group("sales", "Sales", 50, 10);
    let used = [Credits::ZERO, Credits::ZERO, Credits::from_whole(60), Credits::from_whole(10)];
    let p = run(&base_files(), &head, &used);
    assert_eq!(p.summary.lowered, 2);
    assert_eq!(p.summary.newly_blocked, 1);
    assert_eq!(
        p.users.iter().filter(|u| u.newly_blocked).map(|u| u.user.as_str()).collect::<Vec<_>>(),
        ["cat@acme.com"]
    );
}

/// A group with a team pool.
fn pooled(name: &str, dept: &str, credits: u32, priority: i64, pool: u32) -> String {
    format!("{}pool: {{ credits: {pool} }}\n", group(name, dept, credits, priority))
}

#[test]
fn lowering_a_pool_below_the_team_usage_blocks_its_members_with_the_same_limit() {
    let mut base = base_files();
    base[1].1 = pooled("eng", "Eng", 1000, 20, 2000);
    let mut head = base_files();
    head[1].1 = pooled("eng", "Eng", 1000, 20, 500);
    // ann and bob have room of their own (300 of 1000) but used 600 together.
    let used = [Credits::from_whole(300), Credits::from_whole(300), Credits::from_whole(600)];
    let p = run(&base, &head, &used);
    assert_eq!(p.summary.newly_blocked, 2);
    assert_eq!((p.summary.raised, p.summary.lowered, p.summary.unchanged), (0, 0, 5));
    assert_eq!(p.summary.users_affected, 2);
    assert!(!p.is_empty());
    // No limit changed but the pool did: the digest says so, whatever the usage.
    assert_ne!(p.digest, digest(&[], &[]));
    assert_eq!(p.digest, run(&base, &head, &[]).digest);
    let ann = &p.users[0];
    assert_eq!(ann.user, "ann@acme.com");
    assert!(ann.newly_blocked && !ann.limit_changed());
    let standing = ann.pool_after.as_ref().unwrap();
    assert_eq!(
        (standing.group.as_str(), standing.pool, standing.used),
        ("eng", Credits::from_whole(500), Credits::from_whole(600))
    );
    assert_eq!(p.groups[0].changes, ["pool"]);
    assert_eq!(p.groups[0].users_affected, 2);
    let md = markdown(&p);
    assert!(md.contains("- ann@acme.com: team pool `eng` used up (600 of 500)"), "{md}");
    assert!(render::table(&p).contains("newly blocked (team pool `eng` used up)"));
    // Back again: the same two are unblocked.
    let back = run(&head, &base, &used);
    assert_eq!((back.summary.newly_blocked, back.summary.newly_unblocked), (0, 2));
    assert!(render::table(&back).contains("unblocked (was held by team pool `eng`)"));
}

#[test]
fn a_pool_only_change_is_an_effective_change_in_every_format() {
    let mut base = base_files();
    base[1].1 = pooled("eng", "Eng", 1000, 20, 1500);
    let mut head = base_files();
    head[1].1 = pooled("eng", "Eng", 1000, 20, 1200);
    // Nobody's limit changes and nobody is blocked: 300 used of either pool.
    let used = [Credits::from_whole(200), Credits::from_whole(100)];
    let p = run(&base, &head, &used);
    assert!(p.users.is_empty());
    assert!(!p.is_empty(), "a pool cut is an effective change");
    assert_ne!(p.digest, digest(&[], &[]));
    let s = &p.summary;
    assert_eq!((s.pools_added, s.pools_removed, s.pools_raised, s.pools_lowered), (0, 0, 0, 1));
    // ann and bob hold 2000 of credits; the pool bounds them to 1500, then 1200.
    assert_eq!((s.exposure_before, s.exposure_after), (Credits::from_whole(3100), Credits::from_whole(3100)));
    assert_eq!(
        (s.team_exposure_before, s.team_exposure_after),
        (Credits::from_whole(1500 + 1100), Credits::from_whole(1200 + 1100))
    );
    assert_eq!(
        p.pools,
        [PoolChange {
            group: "eng".into(),
            change: Change::Lowered,
            before: Some(Credits::from_whole(1500)),
            after: Some(Credits::from_whole(1200)),
            members_before: 2,
            members_after: 2,
            used_before: Some(Credits::from_whole(300)),
            used_after: Some(Credits::from_whole(300)),
            team_exposure_before: Credits::from_whole(1500),
            team_exposure_after: Credits::from_whole(1200),
        }]
    );
    let table = render::table(&p);
    assert!(
        table.contains("no user's limit changes; team pools: 1 lowered; team exposure 2600 → 2300 (-300)"),
        "{table}"
    );
    assert!(squeezed(&table).contains("eng lowered 1500 → 1200; members 2 → 2; used 300 → 300"), "{table}");
    let md = markdown(&p);
    assert!(
        md.contains("| `eng` | lowered | 1500 → 1200 | 2 → 2 | 300 → 300 | 1500 → 1200 (-300) |"),
        "{md}"
    );
    assert!(!md.contains("No effective change"), "{md}");
    let v: serde_json::Value = serde_json::from_str(&render::json(&p)).unwrap();
    assert_eq!(v["summary"]["pools_lowered"], 1);
    assert_eq!(v["pools"][0]["group"], "eng");
    assert_eq!(
        (&v["pools"][0]["before"], &v["pools"][0]["after"]),
        (&serde_json::json!(1500), &serde_json::json!(1200))
    );
    // Another cut has another digest; the same cut read back is raised.
    let mut deeper = base_files();
    deeper[1].1 = pooled("eng", "Eng", 1000, 20, 1100);
    assert_ne!(run(&base, &deeper, &used).digest, p.digest);
    let back = run(&head, &base, &used);
    assert_eq!((back.summary.pools_raised, back.summary.pools_lowered), (1, 0));
}

#[test]
fn pools_added_and_removed_with_their_group_or_alone() {
    let mut head = base_files();
    head[1].1 = pooled("eng", "Eng", 1000, 20, 5000);
    head.push(("groups/ops.yaml", pooled("ops", "Ops", 100, 5, 50)));
    let p = run(&base_files(), &head, &[]);
    let changes: Vec<(&str, Change)> = p.pools.iter().map(|c| (c.group.as_str(), c.change)).collect();
    assert_eq!(changes, [("eng", Change::Added), ("ops", Change::Added)]);
    assert_eq!(p.summary.pools_added, 2);
    // eve's limit comes from ops now (the same 100 credits), bounded by a pool of 50.
    assert_eq!(p.pools[1].team_exposure_before, Credits::from_whole(0));
    assert_eq!(p.pools[1].team_exposure_after, Credits::from_whole(50));
    assert_eq!(p.summary.team_exposure_after, Credits::from_whole(2000 + 1000 + 50));
    let back = run(&head, &base_files(), &[]);
    assert_eq!(back.summary.pools_removed, 2);
    assert!(render::table(&back).contains("removed 5000 → no pool"), "{}", render::table(&back));
}

/// The text with every run of spaces made one: table columns pad with spaces.
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A workspace whose default caps a product and a model, as the example organisation's does.
fn capped_workspace() -> String {
    WORKSPACE.replace(
        "default: { credits: 100 }",
        "default: { credits: 100, products: { codex: 80 }, models: { gpt-5-pro: 20 } }",
    )
}

#[test]
fn a_group_replacing_the_default_drops_its_caps_and_the_plan_counts_them() {
    let mut base = base_files();
    base[0].1 = capped_workspace();
    let mut head = base.clone();
    // A new group for Ops: its `limit` replaces the default's whole limit, caps included.
    head.push(("groups/ops.yaml", group("ops", "Ops", 300, 5)));
    let p = run(&base, &head, &[]);
    let s = &p.summary;
    assert_eq!((s.raised, s.lowered, s.caps_changed), (1, 0, 0));
    assert_eq!((s.caps_added, s.caps_removed, s.caps_raised, s.caps_lowered), (0, 1, 0, 0));
    let eve = &p.users[0];
    assert_eq!(eve.user, "eve@acme.com");
    assert_eq!(
        eve.caps,
        [
            CapChange {
                kind: CapKind::Product,
                name: "codex".into(),
                before: Some(Credits::from_whole(80)),
                after: None,
                change: Change::Removed,
            },
            CapChange {
                kind: CapKind::Model,
                name: "gpt-5-pro".into(),
                before: Some(Credits::from_whole(20)),
                after: None,
                change: Change::Removed,
            },
        ]
    );
    assert_eq!(p.caps.len(), 2);
    assert_eq!((p.caps[1].name.as_str(), p.caps[1].users), ("gpt-5-pro", 1));
    let table = render::table(&p);
    assert!(table.contains("1 raised, 0 lowered; caps removed for 1 user;"), "{table}");
    assert!(squeezed(&table).contains("model `gpt-5-pro` 20 → none (removed) for 1 user"), "{table}");
    assert!(table.contains("caps: product `codex` 80 → none, model `gpt-5-pro` 20 → none"), "{table}");
    let md = markdown(&p);
    assert!(md.contains("| users with caps added / removed / raised / lowered | 0 / 1 / 0 / 0 |"), "{md}");
    assert!(md.contains("| model `gpt-5-pro` | 20 | none | removed | 1 |"), "{md}");
    let v: serde_json::Value = serde_json::from_str(&render::json(&p)).unwrap();
    assert_eq!(v["summary"]["caps_removed"], 1);
    assert_eq!(v["users"][0]["caps"][1]["change"], "removed");
    assert!(v["users"][0]["caps"][1]["after"].is_null());
}

#[test]
fn a_caps_only_change_is_counted_per_kind_and_changes_the_digest() {
    let mut base = base_files();
    base[1].1 =
        group("eng", "Eng", 1000, 20).replace("{ credits: 1000 }", "{ credits: 1000, models: { o3: 50 } }");
    let mut head = base_files();
    head[1].1 = group("eng", "Eng", 1000, 20)
        .replace("{ credits: 1000 }", "{ credits: 1000, products: { codex: 700 }, models: { o3: 40 } }");
    let p = run(&base, &head, &[]);
    let s = &p.summary;
    assert_eq!((s.raised, s.lowered, s.caps_changed), (0, 0, 2));
    assert_eq!((s.caps_added, s.caps_removed, s.caps_raised, s.caps_lowered), (2, 0, 0, 2));
    assert_ne!(p.digest, digest(&[], &[]));
    let changes: Vec<(&str, Change, usize)> =
        p.caps.iter().map(|c| (c.name.as_str(), c.change, c.users)).collect();
    assert_eq!(changes, [("codex", Change::Added, 2), ("o3", Change::Lowered, 2)]);
}

#[test]
fn a_rate_cap_change_is_a_change_with_its_own_digest() {
    let mut head = base_files();
    head[1].1 =
        group("eng", "Eng", 1000, 20).replace("{ credits: 1000 }", "{ credits: 1000, per_hour: 150 }");
    let p = run(&base_files(), &head, &[]);
    let s = &p.summary;
    assert_eq!((s.raised, s.lowered, s.caps_changed, s.caps_added), (0, 0, 2, 2));
    assert_ne!(p.digest, run(&base_files(), &base_files(), &[]).digest);
    let changes: Vec<(CapKind, &str, Option<Credits>, Change, usize)> =
        p.caps.iter().map(|c| (c.kind, c.name.as_str(), c.after, c.change, c.users)).collect();
    assert_eq!(changes, [(CapKind::Rate, "per_hour", Some(Credits::from_whole(150)), Change::Added, 2)]);
    let text = crate::plan::render::table(&p);
    assert!(text.contains("rate cap (per hour)"), "{text}");

    // lowering it is a change too, and a different plan
    let mut lower = base_files();
    lower[1].1 =
        group("eng", "Eng", 1000, 20).replace("{ credits: 1000 }", "{ credits: 1000, per_hour: 100 }");
    let q = run(&head, &lower, &[]);
    assert_eq!(q.caps[0].change, Change::Lowered);
    assert_ne!(q.digest, p.digest);
}

#[test]
fn each_upcoming_event_shows_its_own_before_and_after() {
    // ann's first boost ends in 3 days, the second starts in 6: the second's own effect
    // is 1000 → 1300, though her limit now is 1300 too.
    let mut head = base_files();
    head.push(("overrides/a1.yaml", over("ann-first", "ann@acme.com", 300, "2026-11-01", "2026-11-23")));
    head.push(("overrides/a2.yaml", over("ann-second", "ann@acme.com", 300, "2026-11-26", "2026-12-20")));
    let p = run(&base_files(), &head, &[]);
    let second = &p.overrides.starting_soon[0];
    assert_eq!(second.name, "ann-second");
    assert_eq!(second.credits_now, Some(Credits::from_whole(1300)));
    assert_eq!(
        (second.limit_before.as_ref().map(|l| l.credits), second.limit_after.as_ref().map(|l| l.credits)),
        (Some(Credits::from_whole(1000)), Some(Credits::from_whole(1300)))
    );
    let table = render::table(&p);
    let table = squeezed(&table);
    assert!(table.contains("ann-second ann@acme.com at 2026-11-26T00:00:00+00:00: 1000 → 1300"), "{table}");
    assert!(table.contains("ann-first ann@acme.com at 2026-11-23T00:00:00+00:00: 1300 → 1000"), "{table}");
    let md = markdown(&p);
    assert!(md.contains("| `ann-second` | ann@acme.com | starts | 1000 → 1300 |"), "{md}");
}

#[test]
fn only_events_the_change_touches_are_listed_unless_all_are_asked_for() {
    let mut base = base_files();
    base.push(("overrides/bob.yaml", over("bob-boost", "bob@acme.com", 200, "2026-11-01", "2026-11-25")));
    let mut head = base.clone();
    head.push(("overrides/eve.yaml", over("eve-later", "eve@acme.com", 50, "2026-11-30", "2026-12-31")));
    let p = run(&base, &head, &[]);
    // bob's boost expires within the window, but this change neither adds it nor moves what it does.
    let starting: Vec<&str> = p.overrides.starting_soon.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(starting, ["eve-later"]);
    assert!(p.overrides.expiring_soon.is_empty());
    assert_eq!(p.overrides.untouched_events, 1);
    assert!(p.overrides.starting_soon[0].touched);
    let table = render::table(&p);
    assert!(table.contains("1 other override event starting or expiring in the next 14 days that this change does not touch (`budgit plan --all-events` lists it)"), "{table}");
    let all = run_with(&base, &head, &[], true);
    assert_eq!(all.overrides.untouched_events, 0);
    let bob = &all.overrides.expiring_soon[0];
    assert_eq!((bob.name.as_str(), bob.touched), ("bob-boost", false));
    // A change of the group bob falls back to touches his expiry: it ends at another limit.
    let mut raised = base.clone();
    raised[1].1 = group("eng", "Eng", 1500, 20);
    let p = run(&base, &raised, &[]);
    let bob = &p.overrides.expiring_soon[0];
    assert!(bob.touched);
    assert_eq!(bob.limit_after.as_ref().map(|l| l.credits), Some(Credits::from_whole(1500)));
}

#[test]
fn a_raise_does_not_unblock_a_member_of_a_used_up_pool() {
    let mut base = base_files();
    base[1].1 = pooled("eng", "Eng", 1000, 20, 1250);
    let mut head = base_files();
    head[1].1 = pooled("eng", "Eng", 1500, 20, 1150);
    // ann is past her own limit at base; at head her limit has room but the team's pool does not.
    let used = [Credits::from_whole(1100), Credits::from_whole(100)];
    let p = run(&base, &head, &used);
    assert_eq!(p.summary.raised, 2);
    assert_eq!((p.summary.newly_blocked, p.summary.newly_unblocked), (1, 0));
    // bob had room and is now held by the pool; ann stays blocked.
    let bob = p.users.iter().find(|u| u.user == "bob@acme.com").unwrap();
    assert!(bob.newly_blocked && bob.limit_changed());
    assert!(p.users.iter().all(|u| !u.newly_unblocked));
    // Without the pool, the same raise unblocks ann.
    let mut plain = base_files();
    plain[1].1 = group("eng", "Eng", 1500, 20);
    let unpooled = run(&base_files(), &plain, &used);
    assert_eq!((unpooled.summary.newly_blocked, unpooled.summary.newly_unblocked), (0, 1));
}

#[test]
fn joining_a_group_whose_pool_is_used_up_blocks_and_moves_the_team_usage() {
    // eve (Ops, 50 used) joins sales, whose pool of 500 holds 480 of cat's and dan's usage.
    let mut base = base_files();
    base[2].1 = pooled("sales", "Sales", 500, 10, 500);
    let mut head = base_files();
    head[2].1 = format!("{}members: [eve@acme.com]\n", pooled("sales", "Sales", 500, 10, 500));
    let used = [
        Credits::ZERO,
        Credits::ZERO,
        Credits::from_whole(240),
        Credits::from_whole(240),
        Credits::from_whole(50),
    ];
    let p = run(&base, &head, &used);
    // eve's limit goes 100 → 500 and she is blocked by the pool; cat and dan with her.
    assert_eq!(p.summary.newly_blocked, 3);
    assert_eq!(p.summary.raised, 1);
    let names: Vec<&str> = p.users.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(names, ["cat@acme.com", "dan@acme.com", "eve@acme.com"]);
}

#[test]
fn nobody_is_blocked_under_soft_enforcement() {
    let soft = WORKSPACE.replace("period: month\n", "period: month\nenforcement: soft\n");
    let mut base = base_files();
    base[0].1 = soft.clone();
    base[1].1 = pooled("eng", "Eng", 1000, 20, 2000);
    let mut head = base.clone();
    head[1].1 = pooled("eng", "Eng", 100, 20, 100);
    let used = [Credits::from_whole(300), Credits::from_whole(300)];
    let p = run(&base, &head, &used);
    assert_eq!(p.summary.lowered, 2);
    assert_eq!((p.summary.newly_blocked, p.summary.newly_unblocked), (0, 0));
}

#[test]
fn a_refactor_moving_a_group_is_no_effective_change() {
    let mut head = base_files();
    head[1].0 = "teams/engineering.yaml";
    let p = run(&base_files(), &head, &[]);
    assert!(p.is_empty());
    assert_eq!(p.groups.len(), 1);
    assert_eq!(p.groups[0].status, DocStatus::Moved);
    assert_eq!(p.digest, run(&base_files(), &base_files(), &[]).digest);
}

#[test]
fn a_selector_change_moves_users_between_groups() {
    let mut head = base_files();
    head[2].1 = group("sales", "Ops", 500, 10);
    let p = run(&base_files(), &head, &[]);
    // cat and dan leave sales for the default; eve joins sales.
    assert_eq!(p.summary.users_affected, 3);
    let sales = p.groups.iter().find(|g| g.group == "sales").unwrap();
    assert_eq!((sales.members_before, sales.members_after, sales.joined, sales.left), (2, 1, 1, 2));
    assert_eq!(sales.changes, ["selector"]);
    let eve = p.users.iter().find(|u| u.user == "eve@acme.com").unwrap();
    assert_eq!(eve.source_before.kind.as_str(), "default");
    assert_eq!(eve.source_after.kind.as_str(), "group");
}

#[test]
fn overrides_added_and_soon_to_expire_say_what_the_limit_becomes() {
    let mut head = base_files();
    head.push(("overrides/ann.yaml", over("ann-push", "ann@acme.com", 300, "2026-11-01", "2026-11-25")));
    head.push(("overrides/eve.yaml", over("eve-later", "eve@acme.com", 50, "2026-11-30", "2026-12-31")));
    let p = run(&base_files(), &head, &[]);
    assert_eq!(p.overrides.added.len(), 2);
    assert!(p.overrides.added[0].active && p.overrides.added[0].amount == "+300");
    assert_eq!(p.summary.users_affected, 1);
    let exp = &p.overrides.expiring_soon;
    assert_eq!(exp.len(), 1);
    assert_eq!(
        (exp[0].credits_now, exp[0].credits_then),
        (Some(Credits::from_whole(1300)), Some(Credits::from_whole(1000)))
    );
    let start = &p.overrides.starting_soon;
    assert_eq!(start.len(), 1);
    assert_eq!(
        (start[0].credits_now, start[0].credits_then),
        (Some(Credits::from_whole(100)), Some(Credits::from_whole(150)))
    );
    // An override that expired before now changes nothing and is not "soon".
    let mut later = base_files();
    later.push(("overrides/old.yaml", over("old", "bob@acme.com", 300, "2026-10-01", "2026-10-25")));
    let p = run(&base_files(), &later, &[]);
    assert!(p.is_empty());
    assert_eq!(p.overrides.added.len(), 1);
    assert!(!p.overrides.added[0].active);
}

#[test]
fn the_digest_ignores_file_and_directory_order() {
    let mut head = base_files();
    head[1].1 = group("eng", "Eng", 1500, 20);
    let a = run(&base_files(), &head, &[]);
    let mut reversed_base = base_files();
    reversed_base.reverse();
    let mut reversed_head = head.clone();
    reversed_head.reverse();
    let b = run(&reversed_base, &reversed_head, &[]);
    assert_eq!(a.digest, b.digest);
    let mut users = a.users.clone();
    users.reverse();
    assert_eq!(digest(&users, &a.pools), a.digest);
    assert_ne!(a.digest, digest(&[], &[]));
    // Pinned: the canonical form is part of the contract (audits compare digests).
    assert_eq!(a.digest.len(), "sha256:".len() + 64);
}

#[test]
fn markdown_fits_a_comment_however_many_users_change() {
    let mut plan = run(&base_files(), &base_files(), &[]);
    let template = {
        let mut head = base_files();
        head[1].1 = group("eng", "Eng", 1500, 20);
        run(&base_files(), &head, &[]).users[0].clone()
    };
    for i in 0..20_000 {
        plan.users.push(UserChange { user: format!("user{i:05}@acme.com"), ..template.clone() });
    }
    plan.summary.users_affected = plan.users.len();
    let text = markdown(&plan);
    assert!(text.chars().count() < render::GITHUB_COMMENT_LIMIT);
    assert!(text.contains("more"));
    assert!(text.contains("<details>"));
}

#[test]
fn json_has_the_documented_shape() {
    let mut head = base_files();
    head[1].1 = group("eng", "Eng", 1500, 20);
    let p = run(&base_files(), &head, &[]);
    let v: serde_json::Value = serde_json::from_str(&render::json(&p)).unwrap();
    for key in
        ["base", "head", "digest", "summary", "users", "groups", "pools", "caps", "overrides", "diagnostics"]
    {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["base"]["ref"], "main");
    assert!(v["head"]["commit"].is_null());
    for key in [
        "users_affected",
        "raised",
        "lowered",
        "exposure_before",
        "exposure_after",
        "newly_blocked",
        "newly_unblocked",
        "caps_added",
        "caps_removed",
        "caps_raised",
        "caps_lowered",
        "pools_added",
        "pools_removed",
        "pools_raised",
        "pools_lowered",
        "team_exposure_before",
        "team_exposure_after",
    ] {
        assert!(v["summary"].get(key).is_some(), "{key}");
    }
    for key in [
        "user",
        "before",
        "after",
        "delta",
        "source_before",
        "source_after",
        "newly_blocked",
        "newly_unblocked",
        "caps",
    ] {
        assert!(v["users"][0].get(key).is_some(), "{key}");
    }
    for key in ["added", "removed", "changed", "starting_soon", "expiring_soon"] {
        assert!(v["overrides"][key].is_array(), "{key}");
    }
    assert_eq!(v["overrides"]["untouched_events"], 0);
    assert_eq!(v["users"][0]["delta"], 500);
}

#[test]
fn the_incremental_base_resolves_only_reachable_users() {
    let dir = directory();
    let mut head_files = base_files();
    head_files[2].1 = group("sales", "Sales", 600, 10);
    let (bp, hp) = (policies(&base_files()), policies(&head_files));
    let hr = resolve(&hp, &dir, now()).unwrap();
    let (ip, _) = incremental::load_base(bp.sources.clone(), &hp);
    assert_eq!(ip.groups.len(), 2);
    let (ir, how) = incremental::resolve_base(&ip, &hp, &hr, &dir, now()).unwrap();
    // cat and dan (sales), not ann, bob or eve.
    assert_eq!(how, incremental::BaseResolution::Incremental(2));
    let full = resolve(&bp, &dir, now()).unwrap();
    for (a, b) in ir.users.iter().zip(&full.users) {
        assert_eq!((a.user, &a.limit, &a.source, a.group), (b.user, &b.limit, &b.source, b.group));
    }
    // A changed default reaches everyone.
    let mut ws = base_files();
    ws[0].1 = WORKSPACE.replace("credits: 100", "credits: 150");
    let wp = policies(&ws);
    let wr = resolve(&wp, &dir, now()).unwrap();
    let (_, how) = incremental::resolve_base(&bp, &wp, &wr, &dir, now()).unwrap();
    assert_eq!(how, incremental::BaseResolution::Full);
}

mod laws {
    use proptest::prelude::*;

    use super::*;

    const DEPTS: [&str; 3] = ["Eng", "Sales", "Ops"];
    const USERS: [&str; 5] = ["ann@acme.com", "bob@acme.com", "cat@acme.com", "dan@acme.com", "eve@acme.com"];

    /// A random policy repository over the test directory: groups on departments with
    /// random limits and priorities (ties included), and overrides around `now`.
    fn repo() -> impl Strategy<Value = Vec<(String, String)>> {
        let groups = (0..3usize, 1..4u32, 0..3i64, any::<bool>(), prop::option::of(1..8u32));
        let overrides = (0..5usize, 1..5u32, -20..20i64, 1..30i64);
        (prop::collection::vec(groups, 0..4), prop::collection::vec(overrides, 0..4), any::<bool>()).prop_map(
            |(groups, overrides, split)| {
                let mut files = vec![("workspace.yaml".to_string(), WORKSPACE.to_string())];
                let mut texts = Vec::new();
                for (k, (dept, credits, priority, listed, pool)) in groups.into_iter().enumerate() {
                    let mut text = match pool {
                        Some(pool) => {
                            pooled(&format!("g{k}"), DEPTS[dept], credits * 100, priority, pool * 100)
                        }
                        None => group(&format!("g{k}"), DEPTS[dept], credits * 100, priority),
                    };
                    if listed {
                        text.push_str("members: [eve@acme.com]\n");
                    }
                    texts.push(text);
                }
                for (k, (user, add, start, days)) in overrides.into_iter().enumerate() {
                    let starts = now().date_naive() + chrono::Duration::days(start);
                    let expires = starts + chrono::Duration::days(days);
                    texts.push(over(
                        &format!("o{k}"),
                        USERS[user],
                        add * 10,
                        &starts.to_string(),
                        &expires.to_string(),
                    ));
                }
                // The same documents, one file each or all in one: layout must not matter.
                if split {
                    files.extend(texts.into_iter().enumerate().map(|(k, t)| (format!("d{k}.yaml"), t)));
                } else if !texts.is_empty() {
                    files.push(("all.yaml".to_string(), texts.join("---\n")));
                }
                files
            },
        )
    }

    fn as_refs(files: &[(String, String)]) -> Vec<(&str, String)> {
        files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn a_plan_of_a_repository_against_itself_is_empty(a in repo()) {
            let p = run(&as_refs(&a), &as_refs(&a), &[]);
            prop_assert!(p.is_empty());
            prop_assert_eq!(p.digest, digest(&[], &[]));
            prop_assert_eq!(p.summary.exposure_before, p.summary.exposure_after);
        }

        /// `run` also checks the incremental base against the from-scratch one.
        #[test]
        fn the_incremental_base_is_exact(a in repo(), b in repo(), used in prop::collection::vec(0..600i64, 5)) {
            let used: Vec<Credits> = used.into_iter().map(Credits::from_whole).collect();
            let p = run(&as_refs(&a), &as_refs(&b), &used);
            let back = run(&as_refs(&b), &as_refs(&a), &used);
            prop_assert_eq!(p.users.len(), back.users.len());
            prop_assert_eq!(p.summary.raised, back.summary.lowered);
            prop_assert_eq!(p.summary.newly_blocked, back.summary.newly_unblocked);
            prop_assert_eq!(p.summary.pools_raised, back.summary.pools_lowered);
            prop_assert_eq!(p.summary.pools_added, back.summary.pools_removed);
            prop_assert_eq!(p.is_empty(), back.is_empty());
        }
    }
}
