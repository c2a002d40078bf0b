//! Usage rows: the engine's usage reader (`input::parse_usage`) on CSV, JSON Lines
//! and Costs API pages. The first byte picks the format and the time zone.
//!
//! Laws beyond "no panic":
//! - no stored row has negative credits;
//! - for CSV and JSON Lines, stored rows plus bad rows never outnumber the lines,
//!   and every finding points at a line of the input;
//! - what was read, written back as canonical CSV (once plain, once with every
//!   field quoted, which takes the general record reader instead of the fast path),
//!   reads back as the same rows with no finding: the formats agree with each other
//!   and the CSV reader's two paths agree.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use budgit_engine::directory::{Directory, User};
use budgit_engine::input::{UsageFormat, parse_usage};
use budgit_engine::usage_table::{UsageTable, day_date};
use chrono::Datelike;
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;

/// Users in the directory the table is interned against; the rest are unknown users.
const KNOWN: [&str; 2] = ["ada@example.com", "bob@example.com"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let format = match selector % 3 {
        0 => UsageFormat::Csv,
        1 => UsageFormat::JsonLines,
        _ => UsageFormat::CostsApi,
    };
    let tz = [Tz::UTC, Tz::Pacific__Kiritimati, Tz::America__Los_Angeles][usize::from(selector / 3 % 3)];
    let dir = directory();
    let file: Arc<str> = Arc::from("usage");
    let mut table = UsageTable::new(&dir);
    let Ok(findings) = parse_usage(&file, bytes, format, &mut table, tz) else { return };

    assert!(table.micros.iter().all(|&m| m >= 0), "a stored row has negative credits");
    let lines = bytes.split(|&b| b == b'\n').count();
    for d in &findings {
        if let Some(at) = &d.location {
            assert!(at.line as usize <= lines, "finding at line {} of a {lines}-line input: {d:?}", at.line);
        }
    }
    if format != UsageFormat::CostsApi {
        let bad = findings.iter().filter(|d| d.code == budgit_engine::diag::Code::UsageBadRow).count();
        assert!(table.len() + bad <= lines, "{} rows and {bad} bad rows from {lines} lines", table.len());
    }

    let rows = rows_of(&table, &dir);
    // Days outside years 0-9999 have no `YYYY-MM-DD` spelling to write back.
    if rows.iter().any(|r| r.0.is_empty()) {
        return;
    }
    for quoted in [false, true] {
        if !quoted && rows.iter().any(|r| [&r.1, &r.2, &r.3].iter().any(|f| needs_quotes(f))) {
            continue;
        }
        let csv = to_csv(&rows, quoted);
        let mut again = UsageTable::new(&dir);
        let findings = parse_usage(&file, csv.as_bytes(), UsageFormat::Csv, &mut again, tz);
        let findings = findings.unwrap_or_else(|e| panic!("written back, the rows are refused: {e}\n{csv}"));
        assert!(findings.is_empty(), "written back, the rows have findings: {findings:?}\n{csv}");
        assert_eq!(rows_of(&again, &dir), rows, "written back (quoted: {quoted}), the rows differ\n{csv}");
    }
});

/// The directory: two known users, no attributes.
fn directory() -> Directory {
    let mut dir = Directory::new(&BTreeMap::new());
    for email in KNOWN {
        dir.push(User { email: email.to_string(), attrs: Vec::new() });
    }
    dir
}

/// A row as text: date, user, product, model, and micro-credits.
type Row = (String, String, String, String, i64);

fn rows_of(table: &UsageTable, dir: &Directory) -> Vec<Row> {
    (0..table.len())
        .map(|i| {
            let date = day_date(table.day[i])
                .filter(|d| (0..=9999).contains(&d.year()))
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            (
                date,
                table.user_email(dir, table.user[i]).to_string(),
                table.products()[usize::from(table.product[i])].clone(),
                table.models()[usize::from(table.model[i])].clone(),
                table.micros[i],
            )
        })
        .collect()
}

fn needs_quotes(field: &str) -> bool {
    field.contains([',', '"', '\n', '\r'])
}

fn to_csv(rows: &[Row], quoted: bool) -> String {
    let field = |f: &str| if quoted { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.to_string() };
    let mut out = String::from("date,user,product,model,credits\n");
    for (date, user, product, model, micros) in rows {
        let credits = budgit_engine::Credits::from_micros(*micros).to_string();
        let fields = [field(date), field(user), field(product), field(model), field(&credits)];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
