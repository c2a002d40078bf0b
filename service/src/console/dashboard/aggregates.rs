//! Usage aggregates of one budget period, in memory: per day × product × model and per user.
//!
//! Loaded once from SQLite for a period (one pass over that period's events), then
//! kept current from the live event stream: every committed event is published on
//! `AppState.stream` after its commit, so applying the stream in sequence order on
//! top of a load that stopped at sequence `loaded_seq` gives exactly the database's
//! sums without reading it again.

use std::collections::HashMap;
use std::sync::Arc;

use budgit_engine::model::When;
use budgit_engine::period::PeriodRange;
use chrono::NaiveDate;
use rusqlite::Connection;

use crate::StreamEvent;
use crate::error::ApiResult;

/// What identifies the period an aggregate covers: its bounds and the time zone of its days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeriodKey {
    /// The period.
    pub period: PeriodRange,
    /// The workspace time zone (usage days are local days).
    pub tz: chrono_tz::Tz,
}

/// Names (products, models) as small numbers.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Interner {
    /// The id of a name, adding it when new.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    /// The id of a known name.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of an id.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// Every (id, name).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Arc<str>)> {
        self.names.iter().enumerate().map(|(i, n)| (u32::try_from(i).unwrap_or(u32::MAX), n))
    }
}

/// Credits and events of one (product, model) for one user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserCell {
    pub product: u32,
    pub model: u32,
    pub micros: i64,
    pub events: u64,
}

/// One user's usage this period.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserAgg {
    /// Total micro-credits.
    pub total: i64,
    /// Events counted.
    pub events: u64,
    /// Per (product, model).
    pub cells: Vec<UserCell>,
    /// Per local day index, sorted by day.
    pub daily: Vec<(u16, i64)>,
    /// Per local day index and product, sorted: a team's trend per product sums these.
    pub daily_products: Vec<(u16, u32, i64)>,
}

impl UserAgg {
    fn add(&mut self, day: u16, product: u32, model: u32, micros: i64, events: u64) {
        self.total = self.total.saturating_add(micros);
        self.events += events;
        match self.cells.iter_mut().find(|c| c.product == product && c.model == model) {
            Some(c) => {
                c.micros = c.micros.saturating_add(micros);
                c.events += events;
            }
            None => self.cells.push(UserCell { product, model, micros, events }),
        }
        match self.daily.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => self.daily[i].1 = self.daily[i].1.saturating_add(micros),
            Err(i) => self.daily.insert(i, (day, micros)),
        }
        match self.daily_products.binary_search_by_key(&(day, product), |(d, p, _)| (*d, *p)) {
            Ok(i) => self.daily_products[i].2 = self.daily_products[i].2.saturating_add(micros),
            Err(i) => self.daily_products.insert(i, (day, product, micros)),
        }
    }

    /// Micro-credits used on one product.
    pub fn product_used(&self, product: u32) -> i64 {
        self.cells.iter().filter(|c| c.product == product).fold(0, |sum, c| sum.saturating_add(c.micros))
    }

    /// Micro-credits used on one model.
    pub fn model_used(&self, model: u32) -> i64 {
        self.cells.iter().filter(|c| c.model == model).fold(0, |sum, c| sum.saturating_add(c.micros))
    }
}

/// Credits and events of one (day, product, model) over all users.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DayCell {
    pub micros: i64,
    pub events: u64,
}

/// The aggregates of one period.
#[derive(Debug, Clone)]
pub(crate) struct Aggregates {
    /// The period and time zone covered.
    pub key: PeriodKey,
    /// Names the load these sums started from (copies keep it).
    pub origin: u64,
    /// The highest event sequence included (events at or below it are already counted).
    pub last_seq: i64,
    /// Changes whenever a sum changes (unique across loads).
    pub version: u64,
    /// Events counted in the period so far: changes only when a sum does.
    pub counted: u64,
    /// Unix seconds of each local midnight from the period start to its end (days + 1 entries).
    pub day_starts: Vec<i64>,
    /// Product names.
    pub products: Interner,
    /// Model names.
    pub models: Interner,
    /// Per day index: (product, model) → sums.
    pub days: Vec<HashMap<(u32, u32), DayCell>>,
    /// Per user.
    pub users: HashMap<Arc<str>, UserAgg>,
}

/// Local midnights bounding every day of a period, as unix seconds. A range that
/// starts or ends inside a day (the last 24 hours) has that day cut at its bound: the
/// first entry is the range's start and the last its end.
fn day_starts(key: &PeriodKey) -> Vec<i64> {
    let (start, end) = (key.period.start.timestamp(), key.period.end.timestamp());
    let mut out = vec![start];
    let mut date = key.period.start_date;
    while date < key.period.end_date {
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
        let midnight = When::Date(date).instant(&key.tz).timestamp();
        if midnight > start && midnight < end {
            out.push(midnight);
        }
    }
    out.push(end.max(start));
    out
}

impl Aggregates {
    /// Empty aggregates of a period.
    pub fn new(key: PeriodKey, version: u64) -> Aggregates {
        let day_starts = day_starts(&key);
        let days = vec![HashMap::new(); day_starts.len().saturating_sub(1)];
        Aggregates {
            key,
            origin: version,
            last_seq: 0,
            version,
            counted: 0,
            day_starts,
            products: Interner::default(),
            models: Interner::default(),
            days,
            users: HashMap::new(),
        }
    }

    /// The day index of an instant, when it lies in the period.
    pub fn day_of(&self, ts: i64) -> Option<u16> {
        let (first, last) = (*self.day_starts.first()?, *self.day_starts.last()?);
        if ts < first || ts >= last {
            return None;
        }
        let i = self.day_starts.partition_point(|&s| s <= ts).checked_sub(1)?;
        u16::try_from(i).ok()
    }

    /// The local date of a day index.
    pub fn date(&self, day: usize) -> Option<NaiveDate> {
        self.key.period.start_date.checked_add_days(chrono::Days::new(day as u64))
    }

    /// Number of days in the period.
    pub fn day_count(&self) -> usize {
        self.days.len()
    }

    /// Counts usage at unix second `ts` (ignored outside the period).
    pub fn add(&mut self, ts: i64, user: &str, product: &str, model: &str, micros: i64, events: u64) {
        let Some(day) = self.day_of(ts) else { return };
        self.counted += events;
        let (p, m) = (self.products.id(product), self.models.id(model));
        if let Some(cells) = self.days.get_mut(usize::from(day)) {
            let cell = cells.entry((p, m)).or_default();
            cell.micros = cell.micros.saturating_add(micros);
            cell.events += events;
        }
        match self.users.get_mut(user) {
            Some(u) => u.add(day, p, m, micros, events),
            None => {
                let mut u = UserAgg::default();
                u.add(day, p, m, micros, events);
                self.users.insert(Arc::from(user), u);
            }
        }
    }

    /// Applies a streamed event once: events at or below the last sequence applied are known.
    pub fn apply_event(&mut self, ev: &StreamEvent) {
        if ev.seq <= self.last_seq {
            return;
        }
        self.last_seq = ev.seq;
        let e = &ev.event;
        self.add(e.ts.timestamp(), &e.user, &e.product, &e.model, e.micros, 1);
    }

    /// Reads a period's events from the store: everything committed up to now.
    pub fn load(conn: &Connection, key: PeriodKey, version: u64) -> ApiResult<Aggregates> {
        let mut agg = Aggregates::new(key, version);
        // events are append-only with increasing sequence numbers: reading the highest
        // first and then only up to it gives a consistent cut the stream continues from
        let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        agg.last_seq = last;
        let mut stmt = conn.prepare(
            "SELECT ts, email, product, model, micros FROM events WHERE ts >= ?1 AND ts < ?2 AND seq <= ?3",
        )?;
        let mut rows = stmt.query((key.period.start.timestamp(), key.period.end.timestamp(), last))?;
        while let Some(r) = rows.next()? {
            let ts: i64 = r.get(0)?;
            let email = r.get_ref(1)?.as_str().unwrap_or("");
            let product = r.get_ref(2)?.as_str().unwrap_or("");
            let model = r.get_ref(3)?.as_str().unwrap_or("");
            let micros: i64 = r.get(4)?;
            agg.add(ts, email, product, model, micros, 1);
        }
        Ok(agg)
    }

    /// Total micro-credits per product id over every day of the period.
    pub fn product_totals(&self) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for cells in &self.days {
            for (&(p, _), cell) in cells {
                let i = p as usize;
                if out.len() <= i {
                    out.resize(i + 1, 0);
                }
                out[i] = out[i].saturating_add(cell.micros);
            }
        }
        out
    }

    /// Total micro-credits per day index (all products and models).
    pub fn day_totals(&self) -> Vec<i64> {
        self.days
            .iter()
            .map(|cells| cells.values().fold(0, |sum: i64, c| sum.saturating_add(c.micros)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use budgit_engine::model::Period;
    use budgit_engine::period::period_containing;
    use chrono::{DateTime, Utc};

    fn key(tz: chrono_tz::Tz) -> PeriodKey {
        let now = DateTime::parse_from_rfc3339("2026-03-15T12:00:00Z").unwrap().with_timezone(&Utc);
        PeriodKey { period: period_containing(Period::Month, &tz, now), tz }
    }

    #[test]
    fn days_are_local_days_across_a_daylight_saving_change() {
        let agg = Aggregates::new(key(chrono_tz::Europe::Paris), 1);
        assert_eq!(agg.day_count(), 31);
        // 2026-03-29 is 23 hours long in Paris; the 30th starts at 22:00 UTC on the 29th
        let ts = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        assert_eq!(agg.day_of(ts("2026-03-29T21:59:59Z")), Some(28));
        assert_eq!(agg.day_of(ts("2026-03-29T22:00:00Z")), Some(29));
        assert_eq!(agg.day_of(ts("2026-02-28T22:59:59Z")), None);
        assert_eq!(agg.day_of(ts("2026-02-28T23:00:00Z")), Some(0));
        assert_eq!(agg.date(29).unwrap().to_string(), "2026-03-30");
    }

    #[test]
    fn streamed_events_add_once_in_sequence_order() {
        let mut agg = Aggregates::new(key(chrono_tz::UTC), 1);
        let e = |seq: i64, micros: i64| {
            let event = crate::api::events::NewEvent {
                id: format!("e{seq}"),
                ts: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z").unwrap().with_timezone(&Utc),
                user: "a@x.com".into(),
                product: "codex".into(),
                model: "m".into(),
                micros,
                context: None,
                payload: Default::default(),
            };
            StreamEvent::new(seq, event, String::new())
        };
        agg.apply_event(&e(1, 100_000));
        // a repeat of a sequence already applied (a reload overlapping the stream) counts once
        agg.apply_event(&e(1, 100_000));
        agg.apply_event(&e(2, 200_000));
        let u = &agg.users["a@x.com"];
        assert_eq!((u.total, u.events, u.daily.clone()), (300_000, 2, vec![(1, 300_000)]));
        assert_eq!(agg.day_totals()[1], 300_000);
        assert_eq!(agg.last_seq, 2);
    }
}
