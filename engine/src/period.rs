//! Budget periods: the calendar day, week, month or quarter containing an instant.
//!
//! Periods are calendar-aligned in the workspace time zone (weeks start on
//! Monday) and their bounds are the instants of local midnight, so a period
//! spanning a daylight-saving change is an hour shorter or longer than the
//! naive count of days suggests. This module only computes ranges; what is
//! evaluated inside them is [`crate::resolve`]'s and the evaluator's business.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{Period, When};

/// The instants and local dates bounding one budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct PeriodRange {
    /// The first instant of the period (local midnight of `start_date`).
    pub start: DateTime<Utc>,
    /// The first instant after the period (local midnight of `end_date`).
    pub end: DateTime<Utc>,
    /// The first day of the period, in the workspace time zone.
    pub start_date: NaiveDate,
    /// The first day after the period (exclusive), in the workspace time zone.
    pub end_date: NaiveDate,
}

impl PeriodRange {
    /// True when `t` lies inside the period (`start <= t < end`).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// True when the local date lies inside the period.
    pub fn contains_date(&self, date: NaiveDate) -> bool {
        self.start_date <= date && date < self.end_date
    }

    /// Number of calendar days in the period.
    pub fn days(&self) -> u32 {
        u32::try_from((self.end_date - self.start_date).num_days()).unwrap_or(0)
    }

    /// The 0-based index of a local date inside the period, when it is inside.
    pub fn day_index(&self, date: NaiveDate) -> Option<u32> {
        if !self.contains_date(date) {
            return None;
        }
        u32::try_from((date - self.start_date).num_days()).ok()
    }
}

/// The period of kind `period` that contains `now`, in time zone `tz`.
pub fn period_containing(period: Period, tz: &chrono_tz::Tz, now: DateTime<Utc>) -> PeriodRange {
    let today = now.with_timezone(tz).date_naive();
    let (start_date, end_date) = dates_containing(period, today);
    PeriodRange {
        start: When::Date(start_date).instant(tz),
        end: When::Date(end_date).instant(tz),
        start_date,
        end_date,
    }
}

/// The first day of the period containing `day` and the first day after it.
///
/// Dates near the ends of chrono's range saturate rather than fail: no budget
/// period lives there, and the callers need a total function.
pub fn dates_containing(period: Period, day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let start = match period {
        Period::Day => day,
        Period::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
        Period::Month => day.with_day(1).unwrap_or(day),
        Period::Quarter => {
            let first_month = (day.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day)
        }
    };
    let end = match period {
        Period::Day => start.checked_add_days(Days::new(1)),
        Period::Week => start.checked_add_days(Days::new(7)),
        Period::Month => start.checked_add_months(Months::new(1)),
        Period::Quarter => start.checked_add_months(Months::new(3)),
    }
    .unwrap_or(NaiveDate::MAX);
    (start, end)
}

/// Parses an IANA time zone name (`America/New_York`, `UTC`).
pub fn parse_timezone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn range(period: Period, tz: &str, now: &str) -> (String, String) {
        let tz = parse_timezone(tz).unwrap();
        let r = period_containing(period, &tz, utc(now));
        (r.start.to_rfc3339(), r.end.to_rfc3339())
    }

    #[test]
    fn months_start_at_local_midnight() {
        // 03:00 UTC on Nov 1 is still Oct 31 in New York.
        assert_eq!(
            range(Period::Month, "America/New_York", "2026-11-01T03:00:00Z"),
            ("2026-10-01T04:00:00+00:00".into(), "2026-11-01T04:00:00+00:00".into())
        );
        // November in New York crosses the end of daylight saving time (Nov 1, 2026).
        assert_eq!(
            range(Period::Month, "America/New_York", "2026-11-01T04:00:00Z"),
            ("2026-11-01T04:00:00+00:00".into(), "2026-12-01T05:00:00+00:00".into())
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-29 is a Sunday.
        let tz = parse_timezone("Europe/Berlin").unwrap();
        let r = period_containing(Period::Week, &tz, utc("2026-11-29T22:59:59Z"));
        assert_eq!(r.start_date.to_string(), "2026-11-23");
        assert_eq!(r.end_date.to_string(), "2026-11-30");
        assert_eq!(r.start.to_rfc3339(), "2026-11-22T23:00:00+00:00");
        // One second later it is Monday in Berlin.
        let r = period_containing(Period::Week, &tz, utc("2026-11-29T23:00:00Z"));
        assert_eq!(r.start_date.to_string(), "2026-11-30");
    }

    #[test]
    fn quarters_and_days() {
        assert_eq!(
            range(Period::Quarter, "UTC", "2026-05-17T12:00:00Z"),
            ("2026-04-01T00:00:00+00:00".into(), "2026-07-01T00:00:00+00:00".into())
        );
        assert_eq!(
            range(Period::Quarter, "UTC", "2026-12-31T23:59:59Z"),
            ("2026-10-01T00:00:00+00:00".into(), "2027-01-01T00:00:00+00:00".into())
        );
        // The day of the spring-forward change in Europe is 23 hours long.
        let tz = parse_timezone("Europe/London").unwrap();
        let r = period_containing(Period::Day, &tz, utc("2026-03-29T12:00:00Z"));
        assert_eq!((r.end - r.start).num_hours(), 23);
        assert_eq!(r.days(), 1);
    }

    #[test]
    fn midnight_inside_a_dst_gap_starts_the_day_at_the_first_instant() {
        // Santiago skips from 00:00 to 01:00 on 2026-09-06.
        let tz = parse_timezone("America/Santiago").unwrap();
        let r = period_containing(Period::Day, &tz, utc("2026-09-06T12:00:00Z"));
        assert_eq!(r.start_date.to_string(), "2026-09-06");
        assert_eq!(r.start.to_rfc3339(), "2026-09-06T04:00:00+00:00");
        assert!(r.contains(utc("2026-09-06T04:00:00Z")));
        assert!(!r.contains(utc("2026-09-06T03:59:59Z")));
    }

    #[test]
    fn unknown_zones_are_rejected() {
        assert!(parse_timezone("Mars/Olympus").is_none());
        assert!(parse_timezone("UTC").is_some());
    }

    proptest! {
        #[test]
        fn the_period_contains_now_and_is_aligned(
            secs in 0i64..4_000_000_000,
            kind in 0usize..4,
            zone in 0usize..5,
        ) {
            let period = [Period::Day, Period::Week, Period::Month, Period::Quarter][kind];
            let tz = parse_timezone(["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham"][zone]).unwrap();
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let r = period_containing(period, &tz, now);
            prop_assert!(r.contains(now));
            prop_assert!(r.contains_date(now.with_timezone(&tz).date_naive()));
            // The next period starts where this one ends.
            let next = period_containing(period, &tz, r.end);
            prop_assert_eq!(next.start, r.end);
            prop_assert_eq!(next.start_date, r.end_date);
            match period {
                Period::Day => prop_assert_eq!(r.days(), 1),
                Period::Week => {
                    prop_assert_eq!(r.days(), 7);
                    prop_assert_eq!(r.start_date.weekday(), chrono::Weekday::Mon);
                }
                Period::Month => prop_assert_eq!(r.start_date.day(), 1),
                Period::Quarter => {
                    prop_assert_eq!(r.start_date.day(), 1);
                    prop_assert_eq!(r.start_date.month0() % 3, 0);
                }
            }
        }
    }
}
