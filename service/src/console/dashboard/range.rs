//! Views of a time range other than the current budget period (`from` and `to` on the
//! dashboard's endpoints), and the period each is compared with.
//!
//! A range's aggregates are loaded once from the store (one pass over the range's
//! events, by the `events_ts` index) and then kept current from the live event stream
//! like the current period's, so no request scans events again; its view is rebuilt
//! from them at most every [`REBUILD_EVERY`] while its sums change, and when the limits
//! or the directory changed. As with the period's view, a request reads the latest view
//! while a rebuild runs in the background; only a range's first view, or a request with
//! `fresh=true`, waits for one. A few ranges are held at once (the range shown and the
//! one before it, for an admin or two), the least recently used dropped first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use budgit_engine::model::When;
use budgit_engine::period::PeriodRange;
use chrono::{DateTime, NaiveDate, Utc};

use super::aggregates::{Aggregates, PeriodKey};
use super::view::{self, DirectorySnap, LimitsSnap, View};
use super::{Live, drain, next_version, poisoned};
use crate::App;
use crate::api::{QueryPairs, shorten};
use crate::error::{ApiError, ApiResult};

/// Ranges held at once: each holds its aggregates twice (the live copy and its view's),
/// tens of megabytes at 100,000 people.
const HELD: usize = 4;
/// How often a range's view is rebuilt at most while its sums change.
const REBUILD_EVERY: Duration = Duration::from_secs(1);
/// The longest range, in days: a little over a year, so a year compares with the one before.
pub(crate) const MAX_DAYS: i64 = 400;

/// A range's aggregates and the receiver keeping them current, under a lock of their
/// own: copying them for a build (a second or more at 100,000 people in a debug build)
/// never holds the list every request reads, nor a request that finds them busy.
type Held = Arc<Mutex<Option<Live>>>;

/// One range held: its aggregates kept current, and the latest view built from them.
struct Entry {
    key: PeriodKey,
    live: Held,
    /// The view, with the count of events its aggregates held and when it was built.
    view: Option<(Arc<View>, u64, Instant)>,
    used: Instant,
}

/// The ranges held.
#[derive(Default)]
pub(crate) struct Ranges {
    entries: Mutex<Vec<Entry>>,
    /// Held while loading or rebuilding a range: one at a time.
    loading: tokio::sync::Mutex<()>,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("dashboard/bad-range", message)
}

/// One bound of a range: an RFC 3339 instant, or a local date in the workspace's time
/// zone (`from` its first instant; `to` the end of that day, so the day is included).
fn bound(name: &str, text: &str, tz: &chrono_tz::Tz, end: bool) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") else {
        return Err(bad(format!(
            "`{name}` must be an RFC 3339 instant or a date (YYYY-MM-DD), not `{}`",
            shorten(text)
        )));
    };
    let date = if end { date.succ_opt().unwrap_or(date) } else { date };
    Ok(When::Date(date).instant(tz))
}

/// The range a query asks for with `from` and `to`; none without them. Both or neither,
/// `from` before `to`, at most [`MAX_DAYS`] long, between the years 2000 and 2100.
pub(crate) fn range_of(q: &QueryPairs, tz: chrono_tz::Tz) -> ApiResult<Option<PeriodKey>> {
    let (from, to) = match (q.get("from"), q.get("to")) {
        (None, None) => return Ok(None),
        (Some(f), Some(t)) => (bound("from", f, &tz, false)?, bound("to", t, &tz, true)?),
        _ => return Err(bad("`from` and `to` go together: give both or neither".into())),
    };
    let earliest = DateTime::from_timestamp(946_684_800, 0).unwrap_or(DateTime::UNIX_EPOCH);
    let latest = DateTime::from_timestamp(4_102_444_800, 0).unwrap_or(DateTime::UNIX_EPOCH);
    if from < earliest || to > latest {
        return Err(bad("a range lies between 2000-01-01 and 2100-01-01".into()));
    }
    if to <= from {
        return Err(bad("`to` must be after `from`".into()));
    }
    if to - from > chrono::Duration::days(MAX_DAYS) {
        return Err(bad(format!("a range is at most {MAX_DAYS} days long")));
    }
    Ok(Some(key_of(from, to, tz)))
}

/// The key of `[start, end)`: its days are the local days it touches.
pub(crate) fn key_of(start: DateTime<Utc>, end: DateTime<Utc>, tz: chrono_tz::Tz) -> PeriodKey {
    let start_date = start.with_timezone(&tz).date_naive();
    let last = (end - chrono::Duration::seconds(1)).with_timezone(&tz).date_naive();
    let end_date = last.succ_opt().unwrap_or(last).max(start_date);
    PeriodKey { period: PeriodRange { start, end, start_date, end_date }, tz }
}

/// The range of equal length just before `key`.
pub(crate) fn previous(key: &PeriodKey) -> PeriodKey {
    let len = key.period.end - key.period.start;
    key_of(key.period.start - len, key.period.start, key.tz)
}

impl Ranges {
    /// The view of `key` when it is current enough: built less than [`REBUILD_EVERY`]
    /// ago (unless `fresh`) or from the sums as they are, with the limits and directory
    /// as they are. Keeps the range current from the stream on the way; while a build
    /// is copying its sums, the view is as current as can be read (unless `fresh`).
    fn current(
        &self,
        key: PeriodKey,
        limits: &LimitsSnap,
        dir: &DirectorySnap,
        fresh: bool,
    ) -> ApiResult<Option<Arc<View>>> {
        let (live, view) = {
            let mut entries = self.entries.lock().map_err(poisoned)?;
            let Some(e) = entries.iter_mut().find(|e| e.key == key) else { return Ok(None) };
            e.used = Instant::now();
            (e.live.clone(), e.view.clone())
        };
        let Some((v, at_count, at)) = view else { return Ok(None) };
        if v.limits_generation != limits.generation || v.directory_generation != dir.generation {
            return Ok(None);
        }
        if !fresh && at.elapsed() < REBUILD_EVERY {
            return Ok(Some(v));
        }
        let counted = match live.try_lock() {
            Ok(mut l) => {
                drain(&mut l);
                // none: it fell behind the stream, and is loaded again
                let Some(l) = l.as_ref() else { return Ok(None) };
                l.agg.counted
            }
            Err(std::sync::TryLockError::WouldBlock) => return Ok((!fresh).then_some(v)),
            Err(std::sync::TryLockError::Poisoned(e)) => return Err(poisoned(e)),
        };
        Ok((at_count == counted).then_some(v))
    }

    /// The latest view of `key`, however old; none before its first.
    fn latest(&self, key: PeriodKey) -> ApiResult<Option<Arc<View>>> {
        let entries = self.entries.lock().map_err(poisoned)?;
        Ok(entries.iter().find(|e| e.key == key).and_then(|e| e.view.as_ref()).map(|(v, _, _)| v.clone()))
    }

    /// The aggregates held for `key`, when they are.
    fn held(&self, key: PeriodKey) -> ApiResult<Option<Held>> {
        let entries = self.entries.lock().map_err(poisoned)?;
        Ok(entries.iter().find(|e| e.key == key).map(|e| e.live.clone()))
    }

    /// Holds a range just loaded, dropping the least recently used beyond [`HELD`].
    fn insert(&self, key: PeriodKey, live: Live) -> ApiResult<()> {
        let mut dropped = Vec::new();
        let mut entries = self.entries.lock().map_err(poisoned)?;
        if let Some(i) = entries.iter().position(|e| e.key == key) {
            dropped.push(entries.remove(i));
        }
        while entries.len() >= HELD {
            let Some((oldest, _)) = entries.iter().enumerate().min_by_key(|(_, e)| e.used) else { break };
            dropped.push(entries.remove(oldest));
        }
        entries.push(Entry { key, live: Arc::new(Mutex::new(Some(live))), view: None, used: Instant::now() });
        drop(entries);
        // freed after the lock is let go: large at 100,000 people
        drop(dropped);
        Ok(())
    }

    /// Keeps a view built for `key`.
    fn keep(&self, key: PeriodKey, view: Arc<View>, counted: u64) -> ApiResult<()> {
        let mut entries = self.entries.lock().map_err(poisoned)?;
        let old = entries
            .iter_mut()
            .find(|e| e.key == key)
            .and_then(|e| e.view.replace((view, counted, Instant::now())));
        drop(entries);
        drop(old);
        Ok(())
    }
}

/// The view of a range: held and current; else the latest while a rebuild runs in the
/// background; else (the first, or `fresh`) rebuilt, or loaded first.
pub(crate) async fn view(app: &App, key: PeriodKey, fresh: bool) -> ApiResult<Arc<View>> {
    let (limits, dir) = (super::limits(app).await?, super::directory(app).await?);
    let ranges = &app.dashboard.ranges;
    if let Some(v) = ranges.current(key, &limits, &dir, fresh)? {
        return Ok(v);
    }
    if !fresh && let Some(stale) = ranges.latest(key)? {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = rebuild(&app, key, limits, dir, false).await {
                super::background_failed("refreshing a range of the dashboard", &e);
            }
        });
        return Ok(stale);
    }
    rebuild(app, key, limits, dir, fresh).await
}

/// Builds the view of `key` from its aggregates as they are (loading them first when
/// not held), one build at a time; a view made current meanwhile is taken as it is.
/// Copies and builds run on blocking threads, never on a request's.
async fn rebuild(
    app: &App,
    key: PeriodKey,
    limits: Arc<LimitsSnap>,
    dir: Arc<DirectorySnap>,
    fresh: bool,
) -> ApiResult<Arc<View>> {
    let ranges = &app.dashboard.ranges;
    let _one = ranges.loading.lock().await;
    if let Some(v) = ranges.current(key, &limits, &dir, fresh)? {
        return Ok(v);
    }
    let copied = match ranges.held(key)? {
        Some(held) => tokio::task::spawn_blocking(move || -> ApiResult<Option<Aggregates>> {
            let mut live = held.lock().map_err(poisoned)?;
            drain(&mut live);
            Ok(live.as_ref().map(|l| l.agg.clone()))
        })
        .await
        .map_err(|e| ApiError::store(&e))??,
        None => None,
    };
    let agg = match copied {
        Some(agg) => agg,
        None => {
            // subscribed before reading, so nothing committed in between is missed; the
            // load's sequence cut makes the overlap count once
            let rx = app.stream.subscribe();
            let version = next_version();
            let agg = app.store.read(move |c| Aggregates::load(c, key, version)).await?;
            let (live, agg) = tokio::task::spawn_blocking(move || {
                let mut live = Some(Live { agg, rx });
                drain(&mut live);
                let copy = live.as_ref().map(|l| l.agg.clone());
                (live, copy)
            })
            .await
            .map_err(|e| ApiError::store(&e))?;
            let (Some(live), Some(agg)) = (live, agg) else {
                return Err(ApiError::store(&"the event stream ran ahead of a range's load"));
            };
            ranges.insert(key, live)?;
            agg
        }
    };
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let counted = agg.counted;
        let mut v = view::build(&agg, &limits, &dir);
        v.range_agg = Some(Arc::new(agg));
        let v = Arc::new(v);
        app2.dashboard.ranges.keep(key, v.clone(), counted)?;
        Ok(v)
    })
    .await
    .map_err(|e| ApiError::store(&e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QueryPairs {
        QueryPairs::parse(Some(s)).unwrap()
    }

    #[test]
    fn dates_are_whole_local_days_and_instants_are_exact() {
        let tz = chrono_tz::Europe::Paris;
        let k = range_of(&q("from=2026-03-01&to=2026-03-07"), tz).unwrap().unwrap();
        assert_eq!(k.period.start.to_rfc3339(), "2026-02-28T23:00:00+00:00");
        assert_eq!(k.period.end.to_rfc3339(), "2026-03-07T23:00:00+00:00");
        assert_eq!(
            (k.period.start_date.to_string(), k.period.end_date.to_string()),
            ("2026-03-01".into(), "2026-03-08".into())
        );
        let p = previous(&k);
        assert_eq!(p.period.end, k.period.start);
        assert_eq!(p.period.start_date.to_string(), "2026-02-22");
        // the last 24 hours touch two local days, cut at the bounds
        let k = range_of(&q("from=2026-03-02T10:00:00Z&to=2026-03-03T10:00:00Z"), tz).unwrap().unwrap();
        let agg = Aggregates::new(k, 1);
        assert_eq!(agg.day_count(), 2);
        assert_eq!(agg.day_starts.first().copied(), Some(k.period.start.timestamp()));
        assert_eq!(agg.day_starts.last().copied(), Some(k.period.end.timestamp()));
    }

    #[test]
    fn a_bad_range_is_refused_with_its_reason() {
        let tz = chrono_tz::UTC;
        for (query, says) in [
            ("from=2026-03-01", "go together"),
            ("to=2026-03-01", "go together"),
            ("from=yesterday&to=2026-03-01", "`from` must be an RFC 3339 instant or a date"),
            ("from=2026-03-05&to=2026-03-01", "after `from`"),
            ("from=2020-01-01&to=2026-03-01", "at most 400 days"),
            ("from=1999-01-01&to=1999-02-01", "between 2000-01-01"),
        ] {
            let e = range_of(&q(query), tz).unwrap_err();
            assert_eq!(e.code, "dashboard/bad-range", "{query}");
            assert!(e.message.contains(says), "{query}: {}", e.message);
        }
        assert!(range_of(&q("now=2026-03-01T00:00:00Z"), tz).unwrap().is_none());
    }
}
