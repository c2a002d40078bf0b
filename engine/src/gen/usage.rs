//! Synthetic usage rows: a skewed per-user volume and a per-profile product mix.
//!
//! Rows are streamed straight to the CSV writer (30M rows never sit in memory);
//! what the policy generator needs — each user's usage in the current period,
//! in total and per product and model — is summed on the way.

use std::io::{self, Write};

use chrono::{Days, NaiveDate};

use super::org::{DEPARTMENTS, Person, Profile};
use super::rng::Rng;

/// The products.
pub const PRODUCTS: [&str; 4] = ["chatgpt", "codex", "api", "agents"];

/// The models.
pub const MODELS: [&str; 12] = [
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-pro",
    "o3",
    "gpt-image-1",
    "gpt-5-codex",
    "gpt-5-codex-mini",
    "codex-mini",
    "gpt-5-nano",
    "gpt-4.1-mini",
    "o4-mini",
    "gpt-realtime",
];

/// (product, model, mean credits per row, weight for builders, analysts, business users).
const COMBOS: [(usize, usize, f64, [u32; 3]); 14] = [
    (0, 0, 1.2, [10, 10, 35]),
    (0, 1, 0.25, [6, 5, 25]),
    (0, 2, 8.0, [1, 2, 2]),
    (0, 3, 2.0, [3, 8, 5]),
    (0, 4, 1.6, [1, 1, 6]),
    (1, 5, 1.8, [30, 8, 1]),
    (1, 6, 0.45, [15, 4, 1]),
    (1, 7, 0.3, [8, 2, 1]),
    (2, 8, 0.04, [3, 10, 2]),
    (2, 9, 0.12, [4, 10, 3]),
    (2, 10, 0.55, [4, 12, 2]),
    (3, 11, 2.4, [1, 2, 3]),
    (3, 0, 1.5, [2, 4, 5]),
    (3, 3, 2.2, [1, 6, 2]),
];

/// Each user's usage in the current period, in micro-credits.
#[derive(Debug, Clone, Default)]
pub struct PeriodUsage {
    /// Total per user.
    pub total: Vec<i64>,
    /// Per user and product (as [`PRODUCTS`]).
    pub products: Vec<[i64; 4]>,
    /// Per user and model (as [`MODELS`]).
    pub models: Vec<[i64; 12]>,
}

/// The shape of the usage to write.
#[derive(Debug, Clone, Copy)]
pub struct UsagePlan {
    /// Total rows.
    pub rows: u64,
    /// Days of usage, ending on `last_day` (inclusive).
    pub days: u32,
    /// The last day (today in the workspace time zone).
    pub last_day: NaiveDate,
    /// The first day of the current period: rows on or after it count as period usage.
    pub period_start: NaiveDate,
}

/// How many rows each user gets: Pareto-distributed weights (a few heavy users, a
/// long tail, some inactive), rounded so the counts add up to exactly `rows`.
fn rows_per_user(rng: &mut Rng, users: usize, rows: u64) -> Vec<u64> {
    let mut weights: Vec<f64> =
        (0..users).map(|_| if rng.chance(0.08) { 0.0 } else { rng.pareto(1.3).min(400.0) }).collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0
        && let Some(first) = weights.first_mut()
    {
        *first = 1.0;
    }
    let total: f64 = weights.iter().sum();
    let mut out = Vec::with_capacity(users);
    let mut cumulative = 0.0;
    let mut assigned = 0u64;
    for (i, w) in weights.iter().enumerate() {
        cumulative += w;
        // The last user takes the rounding remainder so the sum is exact.
        let upto = if i + 1 == users { rows } else { ((cumulative / total) * rows as f64).round() as u64 };
        let upto = upto.clamp(assigned, rows);
        out.push(upto - assigned);
        assigned = upto;
    }
    out
}

/// Writes the usage CSV and returns each user's usage in the current period.
///
/// `progress` is called with the number of rows written so far, every million rows and at the end.
pub fn write(
    out: &mut impl Write,
    seed: u64,
    people: &[Person],
    plan: &UsagePlan,
    progress: &mut dyn FnMut(u64),
) -> io::Result<PeriodUsage> {
    let mut rng = Rng::new(seed, 3);
    let per_user = rows_per_user(&mut rng, people.len(), plan.rows);
    let days = u64::from(plan.days.max(1));
    let first_day = plan.last_day.checked_sub_days(Days::new(days - 1)).unwrap_or(plan.last_day);
    let mut usage = PeriodUsage {
        total: vec![0; people.len()],
        products: vec![[0; 4]; people.len()],
        models: vec![[0; 12]; people.len()],
    };
    // Cumulative weights of the combos per profile, for one draw per row.
    let tables: [Vec<u32>; 3] = std::array::from_fn(|profile| {
        let mut acc = 0;
        COMBOS
            .iter()
            .map(|c| {
                acc += c.3[profile];
                acc
            })
            .collect()
    });
    let profiles: Vec<usize> = people
        .iter()
        .map(|p| match DEPARTMENTS[p.dept].3 {
            Profile::Builder => 0,
            Profile::Analyst => 1,
            Profile::Business => 2,
        })
        .collect();
    // Each user's rows start on a different day of the cycle, so light users are spread over the days.
    let shifts: Vec<u64> = (0..people.len()).map(|_| rng.below(days)).collect();
    let prefixes: Vec<Vec<u8>> = people.iter().map(|p| format!(",{},", p.email).into_bytes()).collect();
    let names: Vec<Vec<u8>> =
        COMBOS.iter().map(|c| format!("{},{},", PRODUCTS[c.0], MODELS[c.1]).into_bytes()).collect();

    out.write_all(b"date,user,product,model,credits\n")?;
    let mut line = Vec::with_capacity(128);
    let mut written = 0u64;
    let mut next_report = 1_000_000u64;
    for d in 0..days {
        let day = first_day.checked_add_days(Days::new(d)).unwrap_or(plan.last_day);
        let in_period = day >= plan.period_start;
        let date = day.format("%Y-%m-%d").to_string().into_bytes();
        for (u, &n) in per_user.iter().enumerate() {
            if n == 0 {
                continue;
            }
            // An even split of the user's rows over the days, rotated by the user's shift.
            let k = (d + shifts[u]) % days;
            let today = n * (k + 1) / days - n * k / days;
            let table = &tables[profiles[u]];
            let total_weight = table.last().copied().unwrap_or(1);
            for _ in 0..today {
                let x = rng.below(u64::from(total_weight)) as u32;
                let c = table.iter().position(|&acc| x < acc).unwrap_or(0);
                let (product, model, mean, _) = COMBOS[c];
                // Pareto(3) has mean 1.5: scale so the combo's mean holds, with a heavy tail.
                let credits = mean * rng.pareto(3.0) / 1.5;
                let decimals = 2 + rng.below(3) as u32;
                let scale = 10u64.pow(decimals);
                let units = ((credits * scale as f64).round() as u64).max(1);
                line.clear();
                line.extend_from_slice(&date);
                line.extend_from_slice(&prefixes[u]);
                line.extend_from_slice(&names[c]);
                push_decimal(&mut line, units, decimals, scale);
                line.push(b'\n');
                out.write_all(&line)?;
                if in_period {
                    let micros = (units * 10u64.pow(6 - decimals)) as i64;
                    usage.total[u] += micros;
                    usage.products[u][product] += micros;
                    usage.models[u][model] += micros;
                }
                written += 1;
                if written == next_report {
                    progress(written);
                    next_report += 1_000_000;
                }
            }
        }
    }
    progress(written);
    Ok(usage)
}

/// Appends `units / scale` with exactly `decimals` digits after the point.
fn push_decimal(line: &mut Vec<u8>, units: u64, decimals: u32, scale: u64) {
    push_int(line, units / scale);
    line.push(b'.');
    let frac = units % scale;
    let mut div = scale / 10;
    for _ in 0..decimals {
        line.push(b'0' + ((frac / div.max(1)) % 10) as u8);
        div /= 10;
    }
}

fn push_int(line: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    line.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly() {
        let mut line = Vec::new();
        push_decimal(&mut line, 1205, 3, 1000);
        assert_eq!(line, b"1.205");
        line.clear();
        push_decimal(&mut line, 7, 4, 10_000);
        assert_eq!(line, b"0.0007");
        line.clear();
        push_decimal(&mut line, 123_400, 2, 100);
        assert_eq!(line, b"1234.00");
    }

    #[test]
    fn row_counts_add_up_and_are_skewed() {
        let mut rng = Rng::new(9, 0);
        let rows = rows_per_user(&mut rng, 10_000, 1_000_000);
        assert_eq!(rows.iter().sum::<u64>(), 1_000_000);
        let mut sorted = rows.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top_percent: u64 = sorted[..100].iter().sum();
        // The top 1% of users make well over 1% of the rows; some users have none.
        assert!(top_percent > 50_000, "{top_percent}");
        assert!(rows.contains(&0));
    }
}
