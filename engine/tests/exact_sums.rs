//! Credits sum exactly end to end: any set of usage rows with up to six decimals,
//! read from a CSV and a Costs API page, gives the exact sums in `evaluate` (per
//! user, per day, per product, totals) and in `plan` (each user's usage), and the
//! JSON of both carries those sums as exact decimal numbers.

#![expect(clippy::unwrap_used, clippy::panic, reason = "test helpers fail the test on bad input")]

use std::sync::Arc;

use budgit_engine::Credits;
use budgit_engine::diag::Report;
use budgit_engine::evaluate::{EvaluateOptions, evaluate};
use budgit_engine::input::{UsageFormat, parse_directory, parse_usage};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::plan::{PlanInput, RefLabel, Side, plan};
use budgit_engine::resolve::resolve;
use budgit_engine::standing::{CapUsage, used_per_user};
use budgit_engine::usage_table::UsageTable;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;

const USERS: [&str; 3] = ["a@acme.com", "b@acme.com", "c@acme.com"];
const PRODUCTS: [&str; 2] = ["chatgpt", "codex"];
/// 2026-11-01T00:00:00Z.
const DAY0: i64 = 1_793_491_200;

fn policies(credits: &str) -> PolicySet {
    let text = format!(
        "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\ndefault:\n  credits: {credits}\n"
    );
    let sources = vec![Source { path: "workspace.yaml".into(), text: text.into(), commit: None }];
    let (set, findings) = budgit_engine::stack::with_large_stack(move || load_sources(sources)).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    set
}

/// Credits as text with up to six decimals, trailing zeros as generated.
fn text(micros: i64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A usage amount in micro-credits: up to the largest one a row may hold, and often
/// a tiny one (a float would print `0.000001` as `1e-6`).
fn micros() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..100, 0i64..=budgit_engine::credits::MAX_USAGE_AMOUNT.micros()]
}

/// A JSON number read back as credits, exactly.
fn credits(v: &Value) -> Credits {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("`{v}` is not credits: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn usage_sums_exactly_in_evaluate_and_plan(
        rows in proptest::collection::vec((0usize..3, 0i64..10, 0usize..2, micros(), any::<bool>()), 0..40),
    ) {
        let now: DateTime<Utc> = "2026-11-12T12:00:00Z".parse().unwrap();
        let base = policies("1000");
        let head = policies("2000.5");
        let dir_text = format!("email\n{}\n", USERS.join("\n"));
        let attributes = &base.workspace().unwrap().doc.attributes;
        let (dir, _) = parse_directory(&Arc::from("directory.csv"), dir_text.as_bytes(), false, attributes).unwrap();
        let resolution = resolve(&base, &dir, now).unwrap();
        // Half the rows as CSV, the other half as a Costs API page (JSON numbers).
        let mut csv = String::from("date,user,product,model,credits\n");
        let mut results: Vec<Vec<String>> = vec![Vec::new(); 10];
        let mut want_user = [0i64; 3];
        let mut want_day = [0i64; 10];
        let mut want_product = [0i64; 2];
        for &(u, d, p, m, as_json) in &rows {
            want_user[u] += m;
            want_day[d as usize] += m;
            want_product[p] += m;
            if as_json {
                results[d as usize].push(format!(
                    r#"{{"object":"organization.costs.result","amount":{{"value":{},"currency":"credits"}},"user_id":"{}","line_item":"{}, gpt-5"}}"#,
                    text(m), USERS[u], PRODUCTS[p]
                ));
            } else {
                csv.push_str(&format!("2026-11-{:02},{},{},gpt-5,{}\n", d + 1, USERS[u], PRODUCTS[p], text(m)));
            }
        }
        let buckets: Vec<String> = results
            .iter()
            .enumerate()
            .map(|(d, r)| {
                let start = DAY0 + d as i64 * 86_400;
                format!(r#"{{"object":"bucket","start_time":{start},"end_time":{},"results":[{}]}}"#, start + 86_400, r.join(","))
            })
            .collect();
        let page = format!(r#"{{"object":"page","data":[{}],"has_more":false,"next_page":null}}"#, buckets.join(","));
        let mut table = UsageTable::new(&dir);
        let mut findings = parse_usage(&Arc::from("u.csv"), csv.as_bytes(), UsageFormat::Csv, &mut table, resolution.timezone).unwrap();
        findings.extend(parse_usage(&Arc::from("c.json"), page.as_bytes(), UsageFormat::CostsApi, &mut table, resolution.timezone).unwrap());
        prop_assert!(findings.is_empty(), "{:?}", findings);

        // evaluate, in memory and through its JSON text
        let evaluation = evaluate(&base, &dir, &resolution, &table, EvaluateOptions::default()).unwrap();
        let json: Value = serde_json::from_str(&serde_json::to_string(&evaluation).unwrap()).unwrap();
        let total: i64 = want_user.iter().sum();
        prop_assert_eq!(evaluation.totals.used, Credits::from_micros(total));
        prop_assert_eq!(credits(&json["totals"]["used"]), Credits::from_micros(total));
        for (u, &want) in want_user.iter().enumerate() {
            prop_assert_eq!(evaluation.users[u].used, Credits::from_micros(want));
            prop_assert_eq!(credits(&json["users"][u]["used"]), Credits::from_micros(want));
        }
        for (d, &want) in want_day.iter().enumerate() {
            prop_assert_eq!(credits(&json["daily"][d]["used"]), Credits::from_micros(want));
            // the exact decimal text, never a float's nor an exponent
            prop_assert_eq!(json["daily"][d]["used"].to_string(), Credits::from_micros(want).to_string());
        }
        for (p, &want) in want_product.iter().enumerate() {
            let got = json["products"].as_array().unwrap().iter().find(|b| b["key"] == PRODUCTS[p]);
            prop_assert_eq!(got.map_or(Credits::ZERO, |b| credits(&b["used"])), Credits::from_micros(want));
        }

        // plan: every user's limit changes, each change carries the user's usage
        let head_resolution = resolve(&head, &dir, now).unwrap();
        let used = used_per_user(&table, dir.len(), &resolution);
        let (bl, hl) = (RefLabel::default(), RefLabel::default());
        let report = Report::default();
        let planned = plan(&PlanInput {
            base: Side { label: &bl, policies: &base, resolution: &resolution },
            head: Side { label: &hl, policies: &head, resolution: &head_resolution },
            directory: &dir,
            used: &used,
            cap_used: &CapUsage::default(),
            head_report: &report,
            now,
            all_events: false,
        });
        let plan_json: Value = serde_json::from_str(&serde_json::to_string(&planned).unwrap()).unwrap();
        prop_assert_eq!(planned.users.len(), 3);
        for (u, &want) in want_user.iter().enumerate() {
            let change = plan_json["users"].as_array().unwrap().iter().find(|c| c["user"] == USERS[u]).unwrap();
            prop_assert_eq!(credits(&change["used"]), Credits::from_micros(want));
            prop_assert_eq!(change["used"].to_string(), Credits::from_micros(want).to_string());
            prop_assert_eq!(change["after"].to_string(), "2000.5");
        }
    }
}

/// A day's sum past what a double holds exactly (9,007,199,254.740993 credits, from
/// rows within the largest usage amount) is written exactly in `daily[]`, not as
/// the nearest double's `9007199254.740992`.
#[test]
fn a_daily_sum_past_a_double_is_exact() {
    let now: DateTime<Utc> = "2026-11-12T12:00:00Z".parse().unwrap();
    let set = policies("1000");
    let attributes = &set.workspace().unwrap().doc.attributes;
    let (dir, _) = parse_directory(&Arc::from("d.csv"), b"email\na@acme.com\n", false, attributes).unwrap();
    let resolution = resolve(&set, &dir, now).unwrap();
    let mut csv = String::from("date,user,product,model,credits\n");
    for _ in 0..9007 {
        csv.push_str("2026-11-03,a@acme.com,codex,gpt-5,1000000\n");
    }
    csv.push_str("2026-11-03,a@acme.com,codex,gpt-5,199254.740993\n");
    let mut table = UsageTable::new(&dir);
    let findings =
        parse_usage(&Arc::from("u.csv"), csv.as_bytes(), UsageFormat::Csv, &mut table, resolution.timezone)
            .unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    let evaluation = evaluate(&set, &dir, &resolution, &table, EvaluateOptions::default()).unwrap();
    let json: Value = serde_json::from_str(&serde_json::to_string_pretty(&evaluation).unwrap()).unwrap();
    assert_eq!(json["daily"][2]["used"].to_string(), "9007199254.740993");
    assert_eq!(json["daily"][2]["products"]["codex"].to_string(), "9007199254.740993");
    assert_eq!(json["users"][0]["used"].to_string(), "9007199254.740993");
}

/// A policy amount with more significant digits than an `f64` holds is read exactly,
/// not rounded to the nearest float (`9007199254.740993` would become `…740992`).
#[test]
fn policy_amounts_are_read_exactly() {
    for written in ["9007199254.740993", "0.000001", "12.5", "1e3", "123456789012.000001"] {
        let set = policies(written);
        let workspace = set.workspace().unwrap();
        assert_eq!(workspace.doc.default.credits, written.parse::<Credits>().unwrap(), "{written}");
    }
    // Seven decimals are no amount of credits: a finding, not a rounding.
    let text =
        "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\ndefault:\n  credits: 1.0000001\n";
    let sources = vec![Source { path: "workspace.yaml".into(), text: text.into(), commit: None }];
    let (_, findings) = budgit_engine::stack::with_large_stack(move || load_sources(sources)).unwrap();
    assert!(findings.iter().any(|d| d.code == "schema/bad-credits"), "{findings:?}");
}
