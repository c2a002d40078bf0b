//! Dates and instants in policy files.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A date (`2026-11-24`, midnight at the start of that day in the workspace time
/// zone) or an RFC 3339 instant (`2026-11-24T09:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    /// A calendar date.
    Date(NaiveDate),
    /// An exact instant.
    Instant(DateTime<FixedOffset>),
}

impl When {
    /// Parses a date or an RFC 3339 timestamp.
    pub fn parse(text: &str) -> Result<When, String> {
        let text = text.trim();
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(When::Date(date));
        }
        DateTime::parse_from_rfc3339(text).map(When::Instant).map_err(|_| {
            format!("`{text}` is not a date (`2026-11-24`) or an RFC 3339 timestamp (`2026-11-24T09:00:00Z`)")
        })
    }

    /// The instant this means in the given time zone.
    pub fn instant<Tz: TimeZone>(&self, tz: &Tz) -> DateTime<Utc> {
        match self {
            When::Instant(t) => t.with_timezone(&Utc),
            When::Date(d) => start_of_day(*d, tz),
        }
    }
}

/// Midnight at the start of `date` in `tz`; when midnight does not exist (a DST
/// gap at midnight), the first instant of the day.
pub fn start_of_day<Tz: TimeZone>(date: NaiveDate, tz: &Tz) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // Skip forward through the gap, hour by hour.
            for hours in 1..=3 {
                if let Some(t) =
                    tz.from_local_datetime(&(midnight + chrono::Duration::hours(hours))).earliest()
                {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&midnight)
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            When::Instant(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

impl Serialize for When {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        When::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for When {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateOrTimestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A date (`2026-11-24`: midnight at the start of that day in the workspace time zone) or an RFC 3339 timestamp.",
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_midnight_in_the_zone() {
        let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let w = When::parse("2026-11-24").unwrap();
        assert_eq!(w.instant(&tz).to_rfc3339(), "2026-11-24T05:00:00+00:00");
        let w = When::parse("2026-11-24T09:00:00Z").unwrap();
        assert_eq!(w.instant(&tz).to_rfc3339(), "2026-11-24T09:00:00+00:00");
        assert!(When::parse("2026-02-30").is_err());
        assert!(When::parse("tomorrow").is_err());
    }
}
