//! The editor's tests: each edit compared with the whole expected file, so a stray
//! change anywhere (a lost comment, a moved line) fails.

use super::*;
use crate::load::Source;

fn group_of(text: &str) -> (Arc<str>, Group) {
    let file: Arc<str> = "groups/eng.yaml".into();
    let (set, findings) =
        crate::load::load_sources(vec![Source { path: file.clone(), text: text.into(), commit: None }]);
    assert!(findings.is_empty(), "{findings:?}");
    (file, set.groups[0].doc.clone())
}

const GROUP: &str = "# Engineering, reviewed by the leads
apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
limit:
  credits: 10000   # per person
  products: { codex: 8000 }

# the team budget
owners: ['@acme/eng']
---
apiVersion: budgit/v1
kind: Group
name: sales
limit:
  credits: 500
pool:
  credits: 9000
";

fn edit(text: &str, change: GroupChange) -> Result<String, EditError> {
    let (file, group) = group_of(text);
    edit_group(&file, text, &group, &change)
}

#[test]
fn edits_only_the_changed_scalars() {
    let change = GroupChange {
        credits: Some(Credits::from_whole(2500)),
        products: [("codex".to_string(), Some("1500.5".parse().unwrap()))].into(),
        ..GroupChange::default()
    };
    let out = edit(GROUP, change).unwrap();
    assert_eq!(
        out,
        GROUP.replace("credits: 10000   #", "credits: 2500   #").replace("codex: 8000 }", "codex: 1500.5 }")
    );
}

#[test]
fn adds_a_pool_after_the_limit_and_removes_one() {
    let change = GroupChange { pool: Some(Some(Credits::from_whole(60000))), ..GroupChange::default() };
    let out = edit(GROUP, change).unwrap();
    assert_eq!(out, GROUP.replace("codex: 8000 }\n", "codex: 8000 }\npool:\n  credits: 60000\n"));
    let sales = GROUP.split("---\n").nth(1).unwrap();
    let (file, group) = group_of(sales);
    let removed =
        edit_group(&file, sales, &group, &GroupChange { pool: Some(None), ..GroupChange::default() })
            .unwrap();
    assert_eq!(removed, sales.replace("pool:\n  credits: 9000\n", ""));
}

#[test]
fn refuses_what_it_cannot_edit_in_place() {
    // An anchor on the limit itself is fine: the scalar is still where it is read.
    let anchored = "apiVersion: budgit/v1\nkind: Group\nname: g\nlimit: &l\n  credits: 10\n";
    let twenty = GroupChange { credits: Some(Credits::from_whole(20)), ..GroupChange::default() };
    assert_eq!(edit(anchored, twenty.clone()).unwrap(), anchored.replace("credits: 10", "credits: 20"));
    // A value shared through an alias would change elsewhere too: refused, never half-done.
    let aliased = "apiVersion: budgit/v1\nkind: Group\nname: g\npriority: &c 10\nlimit:\n  credits: *c\n";
    assert!(matches!(edit(aliased, twenty).unwrap_err(), EditError::NotEditable { .. }));
    let cap = GroupChange { models: [("gpt-5".to_string(), None)].into(), ..GroupChange::default() };
    assert!(matches!(edit(GROUP, cap).unwrap_err(), EditError::NoSuchCap { kind: "models", .. }));
    // A flow mapping over several lines (or with a comment) is not rewritten.
    let multiline =
        "apiVersion: budgit/v1\nkind: Group\nname: g\nlimit:\n  credits: 10\n  products: {\n    codex: 5 }\n";
    let add =
        GroupChange { products: [("chatgpt".to_string(), Some(c(1)))].into(), ..GroupChange::default() };
    assert!(matches!(edit(multiline, add).unwrap_err(), EditError::NotEditable { .. }));
    // A cap shared through an alias would change twice: refused by the re-parse check.
    let shared = "apiVersion: budgit/v1\nkind: Group\nname: g\nlimit:\n  credits: 10\n  products: &caps\n    codex: 5\n  models: *caps\n";
    let add =
        GroupChange { products: [("chatgpt".to_string(), Some(c(1)))].into(), ..GroupChange::default() };
    assert!(matches!(edit(shared, add).unwrap_err(), EditError::NotEditable { .. }));
}

fn c(n: i64) -> Credits {
    Credits::from_whole(n)
}

fn caps(items: &[(&str, Option<i64>)]) -> BTreeMap<String, Option<Credits>> {
    items.iter().map(|(k, v)| ((*k).to_string(), v.map(c))).collect()
}

#[test]
fn adds_a_cap_to_a_flow_mapping_and_a_missing_kind_under_the_limit() {
    let change = GroupChange {
        products: caps(&[("chatgpt", Some(500))]),
        models: caps(&[("gpt-5-pro", Some(200)), ("ft:gpt-4o:acme", Some(50))]),
        ..GroupChange::default()
    };
    let out = edit(GROUP, change).unwrap();
    assert_eq!(
        out,
        GROUP.replace(
            "  products: { codex: 8000 }\n",
            "  products: { codex: 8000, chatgpt: 500 }\n  models: { \"ft:gpt-4o:acme\": 50, gpt-5-pro: 200 }\n"
        )
    );
    // No caps at all, and a pool added in the same change: caps first, inside the limit.
    let sales = GROUP.split("---\n").nth(1).unwrap();
    let (file, group) = group_of(sales);
    let change = GroupChange {
        credits: Some(c(600)),
        products: caps(&[("codex", Some(0))]),
        ..GroupChange::default()
    };
    let out = edit_group(&file, sales, &group, &change).unwrap();
    assert_eq!(out, sales.replace("  credits: 500\n", "  credits: 600\n  products: { codex: 0 }\n"));
    // A flow limit gets the new mapping inside its braces.
    let flow = "apiVersion: budgit/v1\nkind: Group\nname: g\nlimit: { credits: 10 }  # small\n";
    let change = GroupChange { models: caps(&[("o3", Some(2))]), ..GroupChange::default() };
    assert_eq!(
        edit(flow, change).unwrap(),
        flow.replace("{ credits: 10 }", "{ credits: 10, models: { o3: 2 } }")
    );
}

const BLOCK: &str = "apiVersion: budgit/v1
kind: Group
name: research
limit:
    credits: 2000
    products:
        codex: 1500     # most use ChatGPT
        # chatgpt stays uncapped
    models:
        gpt-5-pro: 200
pool:
    credits: 9000
";

#[test]
fn adds_and_removes_caps_of_a_block_mapping_keeping_its_indentation() {
    let change = GroupChange {
        products: caps(&[("chatgpt", Some(700)), ("codex", Some(1000))]),
        models: caps(&[("gpt-5-pro", None)]),
        pool: Some(None),
        ..GroupChange::default()
    };
    assert_eq!(
        edit(BLOCK, change).unwrap(),
        "apiVersion: budgit/v1
kind: Group
name: research
limit:
    credits: 2000
    products:
        codex: 1000     # most use ChatGPT
        chatgpt: 700
        # chatgpt stays uncapped
"
    );
    // Removing one cap of two keeps the mapping; removing the last one drops it.
    let change = GroupChange { products: caps(&[("codex", None)]), ..GroupChange::default() };
    let out = edit(BLOCK, change).unwrap();
    assert_eq!(out, BLOCK.replace("    products:\n        codex: 1500     # most use ChatGPT\n", ""));
    let change =
        GroupChange { products: caps(&[("codex", None), ("api", Some(5))]), ..GroupChange::default() };
    let out = edit(BLOCK, change).unwrap();
    assert_eq!(out, BLOCK.replace("        codex: 1500     # most use ChatGPT\n", "        api: 5\n"));
}

#[test]
fn removes_caps_of_a_flow_mapping() {
    let two = GROUP.replace("{ codex: 8000 }", "{ codex: 8000, 'chatgpt': 12.5 }");
    let change = GroupChange { products: caps(&[("codex", None)]), ..GroupChange::default() };
    assert_eq!(edit(&two, change).unwrap(), GROUP.replace("{ codex: 8000 }", "{ chatgpt: 12.5 }"));
    let change = GroupChange { products: caps(&[("codex", None)]), ..GroupChange::default() };
    assert_eq!(edit(GROUP, change).unwrap(), GROUP.replace("  products: { codex: 8000 }\n", ""));
}

#[test]
fn cap_names_are_checked_and_quoted_when_needed() {
    assert!(cap_name_ok("gpt-5-pro") && cap_name_ok("ft:gpt-4o:acme:7") && cap_name_ok("o3"));
    assert!(!cap_name_ok("") && !cap_name_ok("a b") && !cap_name_ok("-x") && !cap_name_ok("x#y"));
    assert!(!cap_name_ok(&"x".repeat(129)));
    assert_eq!(yaml_key("codex"), "codex");
    assert_eq!(yaml_key("4o"), "\"4o\"");
    assert_eq!(yaml_key("null"), "\"null\"");
    assert_eq!(yaml_key("a/b"), "\"a/b\"");
}

#[test]
fn refuses_bad_cap_names_and_files_it_cannot_parse() {
    // A key with a space or a `#` would turn into something else on reading: refused
    // before any splice, whatever the caller checked.
    for bad in ["a b", "x#y", "", "-x"] {
        let change = GroupChange { products: caps(&[(bad, Some(1))]), ..GroupChange::default() };
        assert_eq!(edit(GROUP, change).unwrap_err(), EditError::BadCapName(bad.to_owned()), "{bad:?}");
    }
    let (file, group) = group_of(GROUP);
    let broken = format!("{GROUP}limit: [unclosed\n");
    let change = GroupChange { credits: Some(c(1)), ..GroupChange::default() };
    assert!(matches!(edit_group(&file, &broken, &group, &change), Err(EditError::Unparsable(_))));
    // The group is not in the text given: nothing to edit.
    let other = GROUP.replace("name: engineering", "name: marketing");
    assert_eq!(
        edit_group(&file, &other, &group, &change).unwrap_err(),
        EditError::NotEditable { what: "the group".into() }
    );
    // Messages are lowercase, name the input in backticks and end without a period.
    let message = EditError::NoSuchCap { group: "eng".into(), kind: "models", name: "o3".into() }.to_string();
    assert_eq!(message, "group `eng` has no `limit.models.o3` cap to remove");
}

#[test]
fn a_key_that_needs_quotes_is_written_double_quoted_and_reads_back() {
    let change = GroupChange {
        models: caps(&[("4o", Some(3)), ("yes", Some(4)), ("gpt@v2+x", Some(5))]),
        ..GroupChange::default()
    };
    let out = edit(GROUP, change).unwrap();
    assert!(out.contains("  models: { \"4o\": 3, gpt@v2+x: 5, \"yes\": 4 }\n"), "{out}");
    let (_, group) = group_of(&out);
    let names: Vec<&str> = group.limit.models.keys().map(String::as_str).collect();
    assert_eq!(names, ["4o", "gpt@v2+x", "yes"]);
    // The comments and blank lines around the limit are all still there.
    assert!(
        out.contains("# Engineering, reviewed by the leads\n") && out.contains("\n\n# the team budget\n")
    );
}

#[test]
fn changed_fields_and_effective_skip_values_already_in_place() {
    let (_, group) = group_of(GROUP);
    let change = GroupChange {
        credits: Some(c(10000)),
        pool: Some(Some(c(50))),
        products: caps(&[("codex", Some(8000)), ("chatgpt", None)]),
        models: caps(&[("o3", Some(1))]),
    };
    let lines: Vec<String> = changed_fields(&group, &change).iter().map(Changed::line).collect();
    assert_eq!(lines, ["limit.models.o3: none → 1", "pool.credits: none → 50"]);
    assert_eq!(
        effective(&group, &change),
        GroupChange {
            credits: None,
            pool: Some(Some(c(50))),
            products: BTreeMap::new(),
            models: caps(&[("o3", Some(1))]),
        }
    );
    assert!(matches!(check_removals(&group, &change), Err(EditError::NoSuchCap { kind: "products", .. })));
}

#[test]
fn scalars_are_plain_only_when_they_read_back_the_same() {
    for plain in ["alice.nguyen@acme.com", "codex", "a+b%c_d-e"] {
        assert_eq!(scalar(plain), plain);
    }
    for (text, quoted) in [
        ("1password@acme.com", "\"1password@acme.com\""),
        ("0o7", "\"0o7\""),
        ("No", "\"No\""),
        ("a: b", "\"a: b\""),
        ("", "\"\""),
        ("x\u{2028}y", "\"x\\u2028y\""),
    ] {
        assert_eq!(scalar(text), quoted, "{text:?}");
    }
}

#[test]
fn a_new_override_reads_back_as_written() {
    let starts = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let expires = NaiveDate::from_ymd_opt(2026, 12, 11).unwrap();
    let o = NewOverride {
        name: "alice-2026-11-27",
        user: "alice@acme.com",
        field: OverrideField::Limit,
        credits: "1500.25".parse().unwrap(),
        starts,
        expires,
        reason: "q4: \"close\"\nuser: evil@x.com",
        requested_by: Some("1bob@acme.com"),
        cap: None,
        note: None,
        dir: "org/policies",
    };
    let text = write_override(&o);
    assert!(
        text.starts_with("# yaml-language-server: $schema=../../../schemas/override.schema.json\n"),
        "{text}"
    );
    let (set, findings) = crate::load::load_sources(vec![Source {
        path: "overrides/alice-2026-11-27.yaml".into(),
        text: text.as_str().into(),
        commit: None,
    }]);
    assert!(findings.is_empty(), "{findings:?}\n{text}");
    let doc = &set.overrides[0].doc;
    assert_eq!((doc.user.as_str(), doc.reason.as_deref()), ("alice@acme.com", Some(o.reason)));
    assert_eq!(doc.limit.as_ref().map(|l| l.credits), Some(o.credits));
    assert_eq!(doc.requested_by.as_deref(), Some("1bob@acme.com"));
    assert!(text.contains("\nstarts: 2026-11-27\nexpires: 2026-12-11\n"), "{text}");
}

#[test]
fn the_default_limit_is_edited_in_place_like_a_groups() {
    let file: Arc<str> = "workspace.yaml".into();
    let text = "apiVersion: budgit/v1\nkind: Workspace\nname: acme\nperiod: month\ndefault:\n  credits: 2000\n  products:\n    codex: 1500   # keep\n  models:\n    gpt-5-pro: 200\nalerts: [50, 80, 100]\n";
    let (set, _) =
        crate::load::load_sources(vec![Source { path: file.clone(), text: text.into(), commit: None }]);
    let default = set.workspace().unwrap().doc.default.clone();
    let change = GroupChange {
        credits: Some("2500".parse().unwrap()),
        products: [("codex".to_string(), Some("1600".parse().unwrap()))].into(),
        ..GroupChange::default()
    };
    let edited = edit_default(&file, text, &default, &effective_default(&default, &change)).unwrap();
    assert_eq!(edited, text.replace("credits: 2000", "credits: 2500").replace("codex: 1500", "codex: 1600"));
    let lines: Vec<String> = changed_default(&default, &change).iter().map(Changed::line).collect();
    assert_eq!(lines, ["default.credits: 2000 → 2500", "default.products.codex: 1500 → 1600"]);
    // a pool is a group's, and a cap that is not there cannot go
    let pool = GroupChange { pool: Some(Some("1".parse().unwrap())), ..GroupChange::default() };
    assert!(matches!(edit_default(&file, text, &default, &pool), Err(EditError::NotEditable { .. })));
    let gone = GroupChange { models: [("o3".to_string(), None)].into(), ..GroupChange::default() };
    assert!(matches!(edit_default(&file, text, &default, &gone), Err(EditError::NoSuchCap { .. })));
}

#[test]
fn an_override_expires_on_the_day_asked_and_nothing_else_moves() {
    let file: Arc<str> = "overrides/o.yaml".into();
    let text = "# why\napiVersion: budgit/v1\nkind: Override\nname: o\nuser: a@acme.com\nadd: { credits: 5 }\nstarts: 2026-11-01\nexpires: \"2026-12-20\"   # end of sprint\nreason: r\n";
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let edited = expire_override(&file, text, "o", date).unwrap();
    assert_eq!(edited, text.replace("\"2026-12-20\"", "2026-12-07"));
    assert!(matches!(expire_override(&file, text, "other", date), Err(EditError::NotEditable { .. })));
}

#[test]
fn a_member_joins_the_list_in_its_own_style() {
    let file: Arc<str> = "groups/g.yaml".into();
    let head = "apiVersion: budgit/v1\nkind: Group\nname: g\nlimit:\n  credits: 10\n";
    let block = format!("{head}members:\n  - a@acme.com\n  - b@acme.com # lead\nowners: [x]\n");
    let edited = add_member(&file, &block, "g", "c@acme.com").unwrap();
    assert_eq!(edited, block.replace("# lead\n", "# lead\n  - c@acme.com\n"));
    let flow = format!("{head}members: [a@acme.com]\n");
    assert_eq!(
        add_member(&file, &flow, "g", "c@acme.com").unwrap(),
        format!("{head}members: [a@acme.com, c@acme.com]\n")
    );
    assert_eq!(add_member(&file, head, "g", "c@acme.com").unwrap(), format!("{head}members: [c@acme.com]\n"));
    assert!(add_member(&file, &flow, "g", "A@acme.com").is_err(), "already a member");
    assert!(matches!(add_member(&file, head, "h", "c@acme.com"), Err(EditError::NotEditable { .. })));
}
