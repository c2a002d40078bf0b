//! Runaway spend: a person or a model spending far above their own baseline.
//!
//! The rule (docs/console.md, "Runaway spend"): spend in the last sliding hour is
//! *runaway* when it is at least [`FLOOR_MICROS`] (50 credits), spread over at least
//! [`MIN_SPENDS`] separate spends (a person's), and at least [`FACTOR`] times the
//! hourly baseline, where the baseline is the average hourly
//! spend of the budget period before that hour, over at least [`MIN_BASELINE_HOURS`]
//! hours. An unattended agent loop spends steadily and fast: an hour of it is many
//! times what a person spends in an average hour, even a heavy user. The floor keeps
//! tiny baselines (a new person, the first hours of a period) from flagging small
//! amounts; the minimum span keeps the first day of a period from making a baseline
//! of a few busy hours.
//!
//! The numbers come from the ledger's in-memory sums (period usage per user and per
//! model, and the last hour per second): nothing reads the events table per request.

use serde::Serialize;

/// How many times the hourly baseline the last hour must be.
pub const FACTOR: i64 = 5;
/// The least spend in the last hour that can be runaway: 50 credits, in micro-credits.
pub const FLOOR_MICROS: i64 = 50_000_000;
/// The baseline is averaged over at least this many hours, however young the period.
pub const MIN_BASELINE_HOURS: i64 = 24;
/// A person is runaway only with spend in at least this many separate seconds of the
/// hour: one large task is not a loop, however large.
pub const MIN_SPENDS: usize = 3;

/// One person or model whose last hour is runaway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runaway {
    /// The person's email or the model's name.
    pub name: String,
    /// Spend in the last sliding hour, in micro-credits.
    pub last_hour: i64,
    /// The hourly baseline, in micro-credits per hour (rounded down).
    pub baseline: i64,
}

/// The hourly baseline of `before` micro-credits spent over `seconds` of the period
/// before the last hour (at least [`MIN_BASELINE_HOURS`]).
pub fn baseline(before: i64, seconds: i64) -> i64 {
    let span = seconds.max(MIN_BASELINE_HOURS * 3600);
    i64::try_from(i128::from(before.max(0)) * 3600 / i128::from(span)).unwrap_or(i64::MAX)
}

/// The rule: `last_hour` is runaway against `before` spent over `seconds` before it.
pub fn is_runaway(last_hour: i64, before: i64, seconds: i64) -> bool {
    if last_hour < FLOOR_MICROS {
        return false;
    }
    // compared without rounding: last_hour >= FACTOR × before × 3600 / span
    let span = i128::from(seconds.max(MIN_BASELINE_HOURS * 3600));
    i128::from(last_hour) * span >= i128::from(FACTOR) * i128::from(before.max(0)) * 3600
}

/// The alert's text: `spent 420 credits in the last hour, 5× or more its hourly baseline of 12.5`.
pub fn message(r: &Runaway) -> String {
    let c = |m: i64| budgit_engine::Credits::from_micros(m);
    format!(
        "spent {} credits in the last hour, at least {FACTOR}× the hourly baseline of {} (runaway spend)",
        c(r.last_hour),
        c(r.baseline)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: i64 = 1_000_000;

    #[test]
    fn the_rule_needs_the_floor_and_five_times_the_baseline() {
        let week = 7 * 24 * 3600;
        // 10 credits an hour for a week: a baseline of 10
        assert_eq!(baseline(1680 * C, week), 10 * C);
        assert!(!is_runaway(49 * C, 1680 * C, week), "under the floor");
        assert!(!is_runaway(49 * C, 0, week), "under the floor, even with no history");
        assert!(is_runaway(50 * C, 1680 * C, week), "exactly five times");
        assert!(!is_runaway(50 * C - 1, 1680 * C, week));
        // a heavy user at 40 an hour is not runaway at 150
        assert!(!is_runaway(150 * C, 40 * 168 * C, week));
        // the first hour of a period averages over a day, not over nothing
        assert_eq!(baseline(240 * C, 600), 10 * C);
        assert!(is_runaway(50 * C, 240 * C, 600));
    }
}
