//! The console's read views: gauges, per-user standings, trends, breakdowns and "my budget".
//!
//! Nothing here scans `events` or `daily` per request. Usage is aggregated once per
//! period ([`aggregates`], loaded in the background at startup and when the period
//! or the settings change) and kept current from the live event stream; applied
//! limits are a copy of the ledger's standings, taken again after a write to
//! `/v1/limits` (limits change only there; at least every [`STANDINGS_TTL`]); the
//! directory's cost centers are read at startup and after each import. The
//! [`view`] joining them is rebuilt only when one of them changed, and requests
//! filter, sort and page it in memory.
//!
//! Requests never wait for a rebuild of the view, except the first one of a period:
//! they read the latest complete view while at most one rebuild runs in the
//! background (stale-while-revalidate). A ticker starts a rebuild every
//! [`REFRESH_EVERY`] when an input changed, so the view is about a second behind the
//! writes at most (the tick plus one rebuild). A request with `fresh=true` waits
//! instead for a view holding every write answered before it.
//!
//! What the aggregates give alone is always current: the summary's usage, usage per
//! product and forecast, the trends, the users' usage by product and model, and
//! `/v1/me`'s usage. Every committed event is on the stream before its ingest call
//! answers, and each request first applies what the stream holds, so these reads see
//! their own writes.
//!
//! Forecasts are linear: usage so far divided by the time elapsed in the period
//! gives the burn rate, projected to the period's end.

mod aggregates;
pub(crate) mod drill;
pub(crate) mod range;
pub(crate) mod recent;
pub(crate) mod runaway;
mod view;

pub use self::drill::{mix, person, team};
pub use self::recent::recent_events;
pub use self::runaway::runaway;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::standing::Status;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use self::aggregates::{Aggregates, PeriodKey, UserAgg};
use self::view::{DirectorySnap, LimitsSnap, Row, Slice, View};
use crate::api::{MAX_PAGE, Page, QueryPairs, csv_field, csv_response, rfc3339};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::ledger::Ledger;
use crate::{App, StreamEvent};

/// How long a copy of the ledger's standings serves when no write to `/v1/limits`
/// made it stale.
const STANDINGS_TTL: Duration = Duration::from_secs(30);
/// How often the background checks whether the view is behind its inputs.
const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// Default page size of the list views.
const PAGE: usize = 50;

static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// A number no aggregate, copy or view has had before.
fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// Aggregates and the stream receiver that keeps them current.
struct Live {
    agg: Aggregates,
    rx: broadcast::Receiver<Arc<StreamEvent>>,
}

/// Cached aggregates behind the console's views.
#[derive(Default)]
pub struct DashboardState {
    live: Mutex<Option<Live>>,
    loading: tokio::sync::Mutex<()>,
    limits: Mutex<Option<Arc<LimitsSnap>>>,
    limits_refresh: tokio::sync::Mutex<()>,
    /// The directory read, with the import count it is current for.
    directory: Mutex<Option<(u64, Arc<DirectorySnap>)>>,
    /// Directory imports seen.
    imports: AtomicU64,
    directory_refresh: tokio::sync::Mutex<()>,
    /// Writes to `/v1/limits` seen.
    limit_writes: AtomicU64,
    view: Mutex<Option<Arc<View>>>,
    /// Held while building a view; holds the builder's own copy of the aggregates, kept
    /// current from its own receiver, so a build never holds the lock requests read under.
    view_build: tokio::sync::Mutex<Option<Live>>,
    /// The latest events, for the activity list.
    recent: Mutex<Option<recent::Recent>>,
    recent_loading: tokio::sync::Mutex<()>,
    /// Views of other ranges than the current period (`from`/`to`, the previous period).
    ranges: range::Ranges,
}

fn poisoned<T>(_: T) -> ApiError {
    ApiError::store(&"a dashboard lock is poisoned")
}

/// Applies what the stream holds; a receiver that fell behind drops the aggregates
/// (they are reloaded from the store).
fn drain(live: &mut Option<Live>) {
    let Some(l) = live.as_mut() else { return };
    let before = l.agg.last_seq;
    loop {
        match l.rx.try_recv() {
            Ok(ev) => l.agg.apply_event(&ev),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => break,
            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                *live = None;
                return;
            }
        }
    }
    if l.agg.last_seq != before {
        l.agg.version = next_version();
    }
}

impl DashboardState {
    fn live(&self) -> ApiResult<MutexGuard<'_, Option<Live>>> {
        let mut live = self.live.lock().map_err(poisoned)?;
        drain(&mut live);
        Ok(live)
    }

    /// True when aggregates of `key` are loaded and current.
    fn holds(&self, key: PeriodKey) -> ApiResult<bool> {
        Ok(self.live()?.as_ref().is_some_and(|l| l.agg.key == key))
    }
}

/// The period of `now` under the ledger's settings.
/// The first instant of the period the dashboard shows at `now`.
pub(crate) fn period_start(app: &App, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    Ok(period_key(app, now)?.period.start)
}

fn period_key(app: &App, now: DateTime<Utc>) -> ApiResult<PeriodKey> {
    let settings = app.ledger()?.settings().clone();
    Ok(PeriodKey { period: Ledger::period_for(&settings, now), tz: settings.timezone })
}

/// Loads the aggregates of `key` unless they are already loaded.
async fn ensure_live(app: &App, key: PeriodKey) -> ApiResult<()> {
    load_live(app, key, false).await
}

/// Loads the aggregates of `key` unless they are loaded, or, with `only_if_empty`,
/// unless any period is loaded (the background never replaces a period a request asked for).
async fn load_live(app: &App, key: PeriodKey, only_if_empty: bool) -> ApiResult<()> {
    let state = &app.dashboard;
    let done = || -> ApiResult<bool> {
        let live = state.live()?;
        Ok(live.as_ref().is_some_and(|l| only_if_empty || l.agg.key == key))
    };
    if done()? {
        return Ok(());
    }
    let _loading = state.loading.lock().await;
    if done()? {
        return Ok(());
    }
    // subscribe before reading, so nothing committed in between is missed; the
    // load's sequence cut makes the overlap count once
    let rx = app.stream.subscribe();
    let version = next_version();
    let agg = app.store.read(move |c| Aggregates::load(c, key, version)).await?;
    let mut live = state.live.lock().map_err(poisoned)?;
    *live = Some(Live { agg, rx });
    drain(&mut live);
    Ok(())
}

/// The applied limits, copied from the ledger at most once per [`STANDINGS_TTL`].
async fn limits(app: &App) -> ApiResult<Arc<LimitsSnap>> {
    let state = &app.dashboard;
    // a merge that changes the workspace's alert levels makes the copy stale too
    let alerts = crate::console::proposals::alert_levels_now(app);
    let fresh = || -> ApiResult<Option<Arc<LimitsSnap>>> {
        Ok(state
            .limits
            .lock()
            .map_err(poisoned)?
            .as_ref()
            .filter(|s| {
                s.writes == state.limit_writes.load(Ordering::Acquire)
                    && s.at.elapsed() < STANDINGS_TTL
                    && alerts.as_ref().is_none_or(|a| Arc::ptr_eq(a, &s.alerts))
            })
            .cloned())
    };
    if let Some(s) = fresh()? {
        return Ok(s);
    }
    let _refresh = state.limits_refresh.lock().await;
    if let Some(s) = fresh()? {
        return Ok(s);
    }
    // counted before copying: a write applied during the copy makes this copy stale
    let writes = state.limit_writes.load(Ordering::Acquire);
    let app2 = app.clone();
    let snap = tokio::task::spawn_blocking(move || -> ApiResult<LimitsSnap> {
        let (standings, pools, enforcement) = {
            let l = app2.ledger()?;
            (l.standings(), l.pool_standings(), l.settings().enforcement)
        };
        let users =
            standings.into_iter().filter_map(|s| s.limit.map(|l| (Arc::from(s.user.as_str()), l))).collect();
        let pools = pools.into_iter().map(|(g, pool, _)| (Arc::from(g.as_str()), pool)).collect();
        let alerts = crate::console::proposals::alert_levels(&app2);
        Ok(LimitsSnap {
            generation: next_version(),
            writes,
            at: Instant::now(),
            users,
            pools,
            enforcement,
            alerts,
        })
    })
    .await
    .map_err(|e| ApiError::store(&e))??;
    let snap = Arc::new(snap);
    *state.limits.lock().map_err(poisoned)? = Some(snap.clone());
    Ok(snap)
}

/// The directory's cost centers, read again after an import.
async fn directory(app: &App) -> ApiResult<Arc<DirectorySnap>> {
    let state = &app.dashboard;
    let fresh = || -> ApiResult<Option<Arc<DirectorySnap>>> {
        let imports = state.imports.load(Ordering::Acquire);
        let dir = state.directory.lock().map_err(poisoned)?;
        Ok(dir.as_ref().filter(|(seen, _)| *seen == imports).map(|(_, d)| d.clone()))
    };
    if let Some(d) = fresh()? {
        return Ok(d);
    }
    let _refresh = state.directory_refresh.lock().await;
    if let Some(d) = fresh()? {
        return Ok(d);
    }
    // counted before reading: an import committed during the read makes this copy stale
    let imports = state.imports.load(Ordering::Acquire);
    let snap = app
        .store
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT email, CAST(json_extract(attrs, '$.cost_center') AS TEXT) FROM users")?;
            let mut rows = stmt.query([])?;
            let mut interned: HashMap<String, Arc<str>> = HashMap::new();
            let mut cost_centers = HashMap::new();
            while let Some(r) = rows.next()? {
                let email = r.get_ref(0)?.as_str().unwrap_or("");
                let cc = r.get_ref(1)?.as_str_or_null().ok().flatten().filter(|c| !c.is_empty());
                let cc = cc.map(|c| match interned.get(c) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = Arc::from(c);
                        interned.insert(c.to_string(), a.clone());
                        a
                    }
                });
                cost_centers.insert(Arc::from(email), cc);
            }
            Ok(DirectorySnap { generation: next_version(), cost_centers })
        })
        .await?;
    let snap = Arc::new(snap);
    *state.directory.lock().map_err(poisoned)? = Some((imports, snap.clone()));
    Ok(snap)
}

/// The view of `key`: the latest complete one (the background keeps it about a second
/// behind its inputs at most), or with `fresh` one holding every input as it is now,
/// rebuilt first when one of them changed. The first view of a period is always waited for.
async fn view(app: &App, key: PeriodKey, fresh: bool) -> ApiResult<Arc<View>> {
    if !fresh {
        ensure_live(app, key).await?;
        let latest = app.dashboard.view.lock().map_err(poisoned)?.as_ref().filter(|v| v.key == key).cloned();
        if let Some(v) = latest {
            return Ok(v);
        }
    }
    // another request may load another period in between: try again a few times
    for _ in 0..3 {
        if let Some(v) = try_view(app, key).await? {
            return Ok(v);
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "dashboard/period-changed",
        "another period is being loaded; try again",
    ))
}

/// The view of `key` as of now, rebuilt when the aggregates, limits or directory
/// changed; `None` when another period replaced its aggregates meanwhile.
async fn try_view(app: &App, key: PeriodKey) -> ApiResult<Option<Arc<View>>> {
    ensure_live(app, key).await?;
    let (limits, dir) = (limits(app).await?, directory(app).await?);
    let state = &app.dashboard;
    let current = |v: &View, (origin, seq): (u64, i64)| {
        v.key == key
            && (v.agg_origin, v.agg_seq) == (origin, seq)
            && v.limits_generation == limits.generation
            && v.directory_generation == dir.generation
    };
    // the load and last event of the aggregates requests read
    let position = || -> ApiResult<Option<(u64, i64)>> {
        Ok(state.live()?.as_ref().filter(|l| l.agg.key == key).map(|l| (l.agg.origin, l.agg.last_seq)))
    };
    let cached = || -> ApiResult<Option<Arc<View>>> {
        let at = position()?;
        let view = state.view.lock().map_err(poisoned)?;
        Ok(view.as_ref().filter(|v| at.is_some_and(|at| current(v, at))).cloned())
    };
    if let Some(v) = cached()? {
        return Ok(Some(v));
    }
    let mut copy = state.view_build.lock().await;
    if let Some(v) = cached()? {
        return Ok(Some(v));
    }
    let Some((origin, _)) = position()? else { return Ok(None) };
    if copy.as_ref().is_none_or(|c| c.agg.key != key || c.agg.origin != origin) {
        // subscribed before copying: what the copy lacks is on this receiver
        let rx = app.stream.subscribe();
        let agg = state.live()?.as_ref().filter(|l| l.agg.key == key).map(|l| l.agg.clone());
        let Some(agg) = agg else { return Ok(None) };
        *copy = Some(Live { agg, rx });
    }
    let mut taken = copy.take();
    let (limits2, dir2) = (limits.clone(), dir.clone());
    let (taken, built) = tokio::task::spawn_blocking(move || {
        drain(&mut taken);
        let built = taken.as_ref().filter(|l| l.agg.key == key).map(|l| view::build(&l.agg, &limits2, &dir2));
        (taken, built)
    })
    .await
    .map_err(|e| ApiError::store(&e))?;
    *copy = taken;
    let Some(built) = built else { return Ok(None) };
    let built = Arc::new(built);
    *state.view.lock().map_err(poisoned)? = Some(built.clone());
    Ok(Some(built))
}

/// Logs an error of work no request waits for (the request log never sees it).
fn background_failed(what: &str, e: &ApiError) {
    tracing::warn!(
        code = e.code,
        message = e.message.as_str(),
        detail = e.detail.as_deref(),
        "{what} failed"
    );
}

/// Keeps the aggregates current: loads the current period and the directory, then
/// applies the stream as it arrives. A task of its own, started with the service's
/// other tasks by [`crate::start`], never by a request or by building the router.
pub(crate) async fn follow(app: App) {
    // a second receiver only to wake up: the aggregates' own receiver is drained
    // under their lock, by this task and by every request
    let mut wake = app.stream.subscribe();
    let load = |app: App| async move {
        let key = period_key(&app, Utc::now())?;
        load_live(&app, key, true).await
    };
    // no request answers these: log a failure here; the next request retries
    if let Err(e) = load(app.clone()).await {
        background_failed("the dashboard's first load", &e);
    }
    if let Err(e) = directory(&app).await {
        background_failed("the dashboard's directory load", &e);
    }
    // the summary compares with the previous period: held before the first page asks
    let before =
        period_key(&app, Utc::now()).map(|k| period_key(&app, k.period.start - chrono::Duration::seconds(1)));
    if let Ok(Ok(before)) = before
        && let Err(e) = range::view(&app, before, false).await
    {
        background_failed("the dashboard's previous period load", &e);
    }
    loop {
        match wake.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
        // one event at a time: applying a 20 ms batch at once (about a hundred events
        // at 5,000 a second) holds a worker long enough to show in the checks' p99
        let lost = app.dashboard.live().map(|l| l.is_none()).unwrap_or(false);
        if lost && let Err(e) = load(app.clone()).await {
            background_failed("reloading the dashboard", &e);
        }
    }
}

/// Keeps the latest view within about a second of its inputs: every [`REFRESH_EVERY`],
/// rebuilds it when an input changed (one rebuild at a time; requests go on reading
/// the previous view meanwhile). Until a request or [`follow`] made a first view
/// there is nothing to refresh; a service without this task (a test's router) still
/// answers, its views built by the requests themselves.
pub(crate) async fn refresh(app: App) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let key = match app.dashboard.view.lock() {
            Ok(v) => v.as_ref().map(|v| v.key),
            Err(_) => return,
        };
        if let Some(key) = key {
            // a failure leaves the previous view; the next tick tries again
            if let Err(e) = try_view(&app, key).await {
                background_failed("refreshing the dashboard", &e);
            }
        }
    }
}

/// Middleware: a successful directory import (or removal) makes the cost centers stale (read again in
/// the background); a successful write to `/v1/limits` makes the limits copy stale.
pub(crate) async fn watch_imports(State(app): State<App>, request: Request, next: Next) -> Response {
    let import = request.method() == Method::POST
        && matches!(request.uri().path(), "/v1/users/import" | "/v1/users/remove");
    let limits = request.method() != Method::GET && request.uri().path() == "/v1/limits";
    let response = next.run(request).await;
    if limits && response.status().is_success() {
        app.dashboard.limit_writes.fetch_add(1, Ordering::AcqRel);
    }
    if import && response.status().is_success() {
        app.dashboard.imports.fetch_add(1, Ordering::AcqRel);
        let app = app.clone();
        tokio::spawn(async move {
            let _ = directory(&app).await;
        });
    }
    response
}

/// Credits as an exact JSON number, like every other response.
fn cr(micros: i64) -> Value {
    crate::api::credits_json(micros)
}

/// `now` from the query (RFC 3339), else the clock.
fn now_of(q: &QueryPairs) -> ApiResult<(DateTime<Utc>, bool)> {
    match q.get("now") {
        None => Ok((Utc::now(), false)),
        Some(t) => DateTime::parse_from_rfc3339(t).map(|t| (t.with_timezone(&Utc), true)).map_err(|_| {
            ApiError::bad_request(
                "dashboard/bad-now",
                format!("`now` must be an RFC 3339 instant, not `{}`", crate::api::shorten(t)),
            )
        }),
    }
}

/// The period position of `now`: elapsed and total seconds (elapsed at least 1).
fn elapsed(key: &PeriodKey, now: DateTime<Utc>) -> (i128, i128) {
    let total = (key.period.end - key.period.start).num_seconds().max(1);
    let done = (now - key.period.start).num_seconds().clamp(1, total);
    (i128::from(done), i128::from(total))
}

/// Usage at the period's end at the burn rate so far.
fn project(used: i64, key: &PeriodKey, now: DateTime<Utc>) -> i64 {
    let (done, total) = elapsed(key, now);
    i64::try_from(i128::from(used) * total / done).unwrap_or(i64::MAX)
}

/// The period a view shows and the instant it was evaluated at.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardPeriod")]
pub(crate) struct PeriodOut {
    #[schemars(extend("format" = "date-time"))]
    start: String,
    #[schemars(extend("format" = "date-time"))]
    end: String,
    #[schemars(extend("format" = "date-time"))]
    now: String,
    /// The Workspace's time zone, in which days and the period are counted.
    timezone: String,
}

fn period_of(key: &PeriodKey, now: DateTime<Utc>) -> PeriodOut {
    PeriodOut {
        start: rfc3339(key.period.start.timestamp()),
        end: rfc3339(key.period.end.timestamp()),
        now: rfc3339(now.timestamp()),
        timezone: key.tz.name().to_string(),
    }
}

/// `fresh=true` from the query: wait for a view holding every write answered before.
fn fresh_of(q: &QueryPairs) -> ApiResult<bool> {
    match q.get("fresh") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "dashboard/bad-fresh",
            format!("`fresh` must be `true` or `false`, not `{}`", crate::api::shorten(other)),
        )),
    }
}

/// The parsed time and the view every admin view starts from: a range's (`from` and
/// `to`) from a view of its own; without one, or for the current period's exact
/// bounds, the current period's.
async fn admin_view(app: &App, who: &Principal, q: &QueryPairs) -> ApiResult<(DateTime<Utc>, Arc<View>)> {
    who.require_admin()?;
    let (now, _) = now_of(q)?;
    let key = period_key(app, now)?;
    let fresh = fresh_of(q)?;
    match range::range_of(q, key.tz)? {
        Some(r) if r.period.start != key.period.start || r.period.end != key.period.end => {
            Ok((now, range::view(app, r, fresh).await?))
        }
        _ => Ok((now, view(app, key, fresh).await?)),
    }
}

/// What a view is compared with: the range of equal length before a range, the
/// previous budget period before the current one.
fn previous_of(app: &App, v: &View) -> ApiResult<PeriodKey> {
    if v.range_agg.is_some() {
        return Ok(range::previous(&v.key));
    }
    period_key(app, v.key.period.start - chrono::Duration::seconds(1))
}

/// The aggregates a view was built from: a range's own, else the live ones while they
/// are still of its period.
fn agg_for<'a>(live: &'a Option<Live>, v: &'a View) -> Option<&'a Aggregates> {
    v.range_agg.as_deref().or_else(|| live.as_ref().map(|l| &l.agg).filter(|a| a.key == v.key))
}

/// The change from `before` to `now` in percent, two decimals (half away from zero);
/// null when `before` is zero.
fn change(now: i64, before: i64) -> Option<f64> {
    if before == 0 {
        return None;
    }
    let x = (i128::from(now) - i128::from(before)) * 20_000 / i128::from(before);
    let hundredths = (x + x.signum()) / 2;
    Some(hundredths as f64 / 100.0)
}

/// `GET /v1/dashboard/summary`: workspace gauge, status counts, products and teams.
pub async fn summary(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let (now, v) = admin_view(&app, &who, &q).await?;
    let before = range::view(&app, previous_of(&app, &v)?, false).await?;
    let t = &v.totals;
    // usage comes from the aggregates, current to this request; the rest from the view
    let (used, products) = {
        let live = app.dashboard.live()?;
        match agg_for(&live, &v) {
            Some(agg) => {
                let by_product = agg.product_totals();
                let products: Map<String, Value> = agg
                    .products
                    .iter()
                    .filter_map(|(id, name)| by_product.get(id as usize).map(|m| (name.to_string(), cr(*m))))
                    .collect();
                (by_product.iter().fold(0, |sum: i64, m| sum.saturating_add(*m)), products)
            }
            None => (t.used, v.products.iter().map(|s| (s.key.to_string(), cr(s.used))).collect()),
        }
    };
    let rules = v.rules;
    let warning = v.alerts.warning_percent();
    let status = if t.limited == 0 {
        Status::Ok
    } else {
        rules.status(Credits::from_micros(used), Credits::from_micros(t.exposure))
    };
    let c = Credits::from_micros;
    let team_before = |g: &str| before.team(g).map_or(0, |t| t.used);
    let teams: Vec<SummaryTeam> = v
        .teams
        .iter()
        .map(|team| SummaryTeam {
            previous: c(team_before(&team.group)),
            change: change(team.used, team_before(&team.group)),
            group: team.group.to_string(),
            members: team.members,
            used: c(team.used),
            budget: c(team.budget()),
            budget_kind: if team.pool.is_some() { "pool" } else { "members" },
            exposure: c(team.exposure),
            remaining: c(team.budget().saturating_sub(team.used).max(0)),
            percent: c(team.used).percent_of(c(team.budget())),
            status: team.status(&rules).as_str(),
        })
        .collect();
    // every model of either side, largest first this period
    let mut models: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for m in &v.models {
        models.entry(&m.key).or_default().0 = m.used;
    }
    for m in &before.models {
        models.entry(&m.key).or_default().1 = m.used;
    }
    let mut models: Vec<(&str, (i64, i64))> = models.into_iter().collect();
    models.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| b.1.1.cmp(&a.1.1)).then_with(|| a.0.cmp(b.0)));
    let previous_used = before.totals.used;
    let body = SummaryOut {
        period: period_of(&v.key, now),
        previous_period: PreviousPeriod {
            start: rfc3339(before.key.period.start.timestamp()),
            end: rfc3339(before.key.period.end.timestamp()),
            products: before.products.iter().map(|s| (s.key.to_string(), c(s.used))).collect(),
        },
        models: models
            .into_iter()
            .map(|(model, (now, was))| SummaryModel {
                model: model.to_string(),
                used: c(now),
                previous: c(was),
                change: change(now, was),
            })
            .collect(),
        workspace: Gauge {
            previous: c(previous_used),
            change: change(used, previous_used),
            used: c(used),
            exposure: c(t.exposure),
            users: t.limited,
            percent: c(used).percent_of(c(t.exposure)),
            status: status.as_str(),
            forecast: c(project(used, &v.key, now)),
            status_counts: StatusCounts {
                ok: t.ok,
                warning: t.warning,
                exceeded: t.exceeded,
                unlimited: t.unlimited,
            },
            blocked: t.blocked,
            warning_threshold: warning,
            alerts: v.alerts.levels().map(<[u32]>::to_vec),
        },
        products,
        teams,
    };
    Ok(axum::Json(body).into_response())
}

/// The schema of a standing's status as the dashboard writes it.
pub(crate) fn status_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["ok", "warning", "exceeded", "unlimited"],
        "description": "`exceeded`: the total or the pool is used up; `warning`: the total, the pool or a non-zero cap is at 80% or more; `unlimited`: no applied limit"
    })
}

/// The answer of `/v1/dashboard/summary`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardSummary")]
pub(crate) struct SummaryOut {
    period: PeriodOut,
    /// What the figures are compared with: the range of equal length before a range
    /// (`from`/`to`), else the previous budget period.
    previous_period: PreviousPeriod,
    workspace: Gauge,
    /// Credits per product this period.
    #[schemars(with = "BTreeMap<String, Credits>")]
    products: Map<String, Value>,
    teams: Vec<SummaryTeam>,
    /// Every model used this period or the previous one, this period's largest first.
    models: Vec<SummaryModel>,
}

/// The period the summary's figures are compared with.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardPreviousPeriod")]
struct PreviousPeriod {
    #[schemars(extend("format" = "date-time"))]
    start: String,
    /// Exclusive.
    #[schemars(extend("format" = "date-time"))]
    end: String,
    /// Credits per product in it.
    products: BTreeMap<String, Credits>,
}

/// One model's usage, period over period.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardModel")]
struct SummaryModel {
    model: String,
    used: Credits,
    /// Used in the previous period.
    previous: Credits,
    /// Percent change from `previous`, two decimals; null when `previous` is zero.
    change: Option<f64>,
}

/// The workspace gauge: used against the sum of applied limits.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardGauge")]
struct Gauge {
    used: Credits,
    /// Used in the previous period (`previous_period`).
    previous: Credits,
    /// Percent change from `previous`, two decimals; null when `previous` is zero.
    change: Option<f64>,
    exposure: Credits,
    /// Users with an applied limit.
    users: usize,
    /// Percent of the exposure used, two decimals; null for a zero exposure.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
    /// Usage at the period's end, linear at the burn rate so far.
    forecast: Credits,
    status_counts: StatusCounts,
    blocked: usize,
    /// The percent at which a status becomes `warning`: the workspace's highest alert
    /// level below 100 (at the approved ref of `--repo`), 80 when not known.
    warning_threshold: u32,
    /// The workspace's alert levels in percent, ascending; null when the server has no
    /// policy repository.
    alerts: Option<Vec<u32>>,
}

/// Users with an applied limit by status.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardStatusCounts")]
struct StatusCounts {
    ok: usize,
    warning: usize,
    exceeded: usize,
    unlimited: usize,
}

/// A team's budget this period, as the summary lists it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTeam")]
struct SummaryTeam {
    group: String,
    members: usize,
    used: Credits,
    /// The team's usage in the previous period (its members as they are now).
    previous: Credits,
    /// Percent change from `previous`, two decimals; null when `previous` is zero.
    change: Option<f64>,
    /// The team's pool, else the sum of its members' limits.
    budget: Credits,
    #[schemars(extend("enum" = ["pool", "members"]))]
    budget_kind: &'static str,
    /// The sum of the members' limits.
    exposure: Credits,
    remaining: Credits,
    /// Percent of the budget used, two decimals; null for a zero budget.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
}

/// A sort order: descending or ascending.
fn order_of(q: &QueryPairs, default_desc: bool) -> ApiResult<bool> {
    match q.get("order") {
        None => Ok(default_desc),
        Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(o) => Err(ApiError::bad_request(
            "dashboard/bad-order",
            format!("`order` must be `asc` or `desc`, not `{}`", crate::api::shorten(o)),
        )),
    }
}

/// A page of `items` in a total order: (number, key) ascending or descending by the
/// number, then by key; the cursor is the last row's `number:key`.
fn page<T>(
    mut items: Vec<T>,
    sort_key: impl Fn(&T) -> (i128, &str),
    desc: bool,
    after: Option<&str>,
    limit: Option<usize>,
) -> ApiResult<Page<T, String>> {
    let cmp = |a: (i128, &str), b: (i128, &str)| {
        let by = if desc { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
        by.then_with(|| a.1.cmp(b.1))
    };
    items.sort_unstable_by(|a, b| cmp(sort_key(a), sort_key(b)));
    let start = match after {
        None | Some("") => 0,
        Some(cursor) => {
            let parsed = cursor.split_once(':').and_then(|(n, k)| n.parse::<i128>().ok().map(|n| (n, k)));
            let Some(c) = parsed else {
                return Err(ApiError::bad_request("dashboard/bad-cursor", "`after` must be a `next` cursor"));
            };
            items.partition_point(|x| cmp(sort_key(x), c) != std::cmp::Ordering::Greater)
        }
    };
    let total = items.len();
    let rows: Vec<T> = items.into_iter().skip(start).collect();
    let limit = limit.unwrap_or(rows.len());
    let cut = Page::cut(rows, limit, |r| {
        let (n, k) = sort_key(r);
        format!("{n}:{k}")
    });
    Ok(cut.with_total(total))
}

/// Usage per product and per model of one user, as exact credits by name.
fn usage_maps(agg: &Aggregates, u: Option<&UserAgg>) -> (Map<String, Value>, Map<String, Value>) {
    let mut products: BTreeMap<&str, i64> = BTreeMap::new();
    let mut models: BTreeMap<&str, i64> = BTreeMap::new();
    for c in u.map_or(&[][..], |u| u.cells.as_slice()) {
        let p = products.entry(agg.products.name(c.product)).or_default();
        *p = p.saturating_add(c.micros);
        let m = models.entry(agg.models.name(c.model)).or_default();
        *m = m.saturating_add(c.micros);
    }
    let to = |m: BTreeMap<&str, i64>| m.into_iter().map(|(k, v)| (k.to_string(), cr(v))).collect();
    (to(products), to(models))
}

/// `GET /v1/dashboard/users`: every user's standing, filtered, sorted and paged; `format=csv` exports all matches.
pub async fn users(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let (_, v) = admin_view(&app, &who, &q).await?;
    let needle = q.get("q").map(str::to_lowercase).filter(|s| !s.is_empty());
    let group = q.get("group").filter(|s| !s.is_empty());
    let mut statuses = Vec::new();
    for s in q.all("status") {
        statuses.push(view::parse_status(&s).ok_or_else(|| {
            ApiError::bad_request(
                "dashboard/bad-status",
                format!(
                    "`status` must be `ok`, `warning`, `exceeded` or `unlimited`, not `{}`",
                    crate::api::shorten(&s)
                ),
            )
        })?);
    }
    let sort = q.get("sort").unwrap_or("used");
    let key: fn(&Row) -> (i128, &str) = match sort {
        "used" => |r| (i128::from(r.used), &*r.user),
        "percent" => |r| (r.percent_key(), &*r.user),
        "remaining" => |r| (r.remaining.map_or(i128::MAX, i128::from), &*r.user),
        "email" => |r| (0, &*r.user),
        other => {
            return Err(ApiError::bad_request(
                "dashboard/bad-sort",
                format!(
                    "`sort` must be `used`, `percent`, `remaining` or `email`, not `{}`",
                    crate::api::shorten(other)
                ),
            ));
        }
    };
    let desc = order_of(&q, sort != "email")?;
    let csv = q.wants_csv()?;
    let limit = if csv { None } else { Some(q.page_size(PAGE, MAX_PAGE)?) };
    let matches: Vec<&Row> = v
        .rows
        .iter()
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
        .filter(|r| group.is_none_or(|g| r.team() == Some(g)))
        .filter(|r| needle.as_ref().is_none_or(|n| r.user.to_lowercase().contains(n.as_str())))
        .collect();
    let paged = page(matches, |r| key(r), desc, q.get("after"), limit)?;
    let live = app.dashboard.live()?;
    let agg = agg_for(&live, &v);
    if csv {
        let products: Vec<&Slice> = v.products.iter().collect();
        let mut out =
            String::from("user,group,cost_center,limit,used,remaining,percent,status,blocked,events");
        for p in &products {
            out.push(',');
            out.push_str(&csv_field(&p.key));
        }
        out.push('\n');
        let text = |m: Option<i64>| m.map(|m| Credits::from_micros(m).to_string()).unwrap_or_default();
        for r in paged.rows() {
            let fields = [
                r.user.to_string(),
                r.group.as_deref().unwrap_or("").to_string(),
                r.cost_center.to_string(),
                text(r.limit),
                text(Some(r.used)),
                text(r.remaining),
                r.percent.map(|p| p.to_string()).unwrap_or_default(),
                view::status_str(r.status).to_string(),
                r.blocked().to_string(),
                r.events.to_string(),
            ];
            out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            let u = agg.and_then(|a| a.users.get(&*r.user).map(|u| (a, u)));
            for p in &products {
                let used = u.and_then(|(a, u)| a.products.get(&p.key).map(|id| u.product_used(id)));
                out.push(',');
                out.push_str(&text(Some(used.unwrap_or(0))));
            }
            out.push('\n');
        }
        return Ok(csv_response("users.csv", out));
    }
    let data = paged.map(|r| {
        let (products, models) = match agg {
            Some(a) => usage_maps(a, a.users.get(&*r.user)),
            None => (Map::new(), Map::new()),
        };
        UserOut {
            user: r.user.to_string(),
            group: r.group.as_deref().map(str::to_string),
            team: r.team().map(str::to_string),
            cost_center: r.cost_center.to_string(),
            limit: r.limit.map(Credits::from_micros),
            used: Credits::from_micros(r.used),
            remaining: r.remaining.map(Credits::from_micros),
            percent: r.percent,
            status: view::status_str(r.status),
            blocked: r.blocked(),
            events: r.events,
            products,
            models,
        }
    });
    Ok(data.into_response())
}

/// A user of `/v1/dashboard/users`, with their standing and usage this period.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardUser")]
pub(crate) struct UserOut {
    user: String,
    group: Option<String>,
    /// The team the user counts in: their group, `(no group)` with a limit and no group,
    /// null without a limit.
    team: Option<String>,
    cost_center: String,
    limit: Option<Credits>,
    used: Credits,
    /// The limit's remainder bounded by the pool's; null without a limit.
    remaining: Option<Credits>,
    /// Percent of the limit used, two decimals; null without a limit or for a zero one.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
    blocked: bool,
    /// Events this period.
    events: u64,
    #[schemars(with = "BTreeMap<String, Credits>")]
    products: Map<String, Value>,
    #[schemars(with = "BTreeMap<String, Credits>")]
    models: Map<String, Value>,
}

/// `GET /v1/dashboard/trends?by=product|model`: daily credits over the period so far, and the forecast.
pub async fn trends(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    who.require_admin()?;
    let by_model = match q.get("by").unwrap_or("product") {
        "product" => false,
        "model" => true,
        other => {
            return Err(ApiError::bad_request(
                "dashboard/bad-by",
                format!("`by` must be `product` or `model`, not `{}`", crate::api::shorten(other)),
            ));
        }
    };
    let (now, _) = now_of(&q)?;
    // the period's trend reads the aggregates, always current: `fresh` matters to a range's
    let fresh = fresh_of(&q)?;
    let key = period_key(&app, now)?;
    if let Some(r) = range::range_of(&q, key.tz)?.filter(|r| r.period != key.period) {
        let v = range::view(&app, r, fresh).await?;
        if let Some(agg) = v.range_agg.as_deref() {
            return Ok(axum::Json(trend(agg, &r, now, by_model)).into_response());
        }
    }
    // another request may load another period in between: try again a few times
    for _ in 0..3 {
        ensure_live(&app, key).await?;
        let out = {
            let live = app.dashboard.live()?;
            live.as_ref().map(|l| &l.agg).filter(|a| a.key == key).map(|agg| trend(agg, &key, now, by_model))
        };
        if let Some(v) = out {
            return Ok(axum::Json(v).into_response());
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "dashboard/period-changed",
        "another period is being loaded; try again",
    ))
}

/// Daily credits per product or model over the period so far, and the forecast.
fn trend(agg: &Aggregates, key: &PeriodKey, now: DateTime<Utc>, by_model: bool) -> TrendOut {
    let today = now.with_timezone(&key.tz).date_naive();
    let shown = agg.day_count().min(day_index(agg, today) + 1);
    let days: Vec<String> = (0..shown).filter_map(|d| agg.date(d)).map(|d| d.to_string()).collect();
    let mut series: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (d, cells) in agg.days.iter().enumerate().take(shown) {
        for (&(p, m), cell) in cells {
            let id = if by_model { m } else { p };
            let slot = &mut series.entry(id).or_insert_with(|| vec![0; shown])[d];
            *slot = slot.saturating_add(cell.micros);
        }
    }
    let names = if by_model { &agg.models } else { &agg.products };
    let mut series: Vec<(&str, i64, Vec<i64>)> = series
        .into_iter()
        .map(|(id, v)| (names.name(id), v.iter().fold(0, |s: i64, m| s.saturating_add(*m)), v))
        .collect();
    series.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    // every event of the period so far, including any dated after `now` in a replay
    let used: i64 = agg.day_totals().iter().fold(0, |s, m| s.saturating_add(*m));
    let (done, _) = elapsed(key, now);
    let mut forecast_days = Vec::new();
    let mut forecast_values = Vec::new();
    for d in shown.saturating_sub(1)..agg.day_count() {
        let Some(&day_end) = agg.day_starts.get(d + 1) else { continue };
        let ahead = i128::from((day_end - now.timestamp()).max(0));
        let projected = i128::from(used) + i128::from(used) * ahead / done;
        if let Some(date) = agg.date(d) {
            forecast_days.push(date.to_string());
            forecast_values.push(Credits::from_micros(i64::try_from(projected).unwrap_or(i64::MAX)));
        }
    }
    TrendOut {
        by: if by_model { "model" } else { "product" },
        period: period_of(key, now),
        days,
        series: series
            .iter()
            .map(|(k, total, v)| Series {
                key: (*k).to_string(),
                total: Credits::from_micros(*total),
                values: v.iter().map(|m| Credits::from_micros(*m)).collect(),
            })
            .collect(),
        forecast: TrendForecast { days: forecast_days, values: forecast_values },
    }
}

/// The answer of `/v1/dashboard/trends`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTrends")]
pub(crate) struct TrendOut {
    #[schemars(extend("enum" = ["product", "model"]))]
    by: &'static str,
    period: PeriodOut,
    /// The local days of the period so far.
    #[schemars(extend("items" = { "type": "string", "format": "date" }))]
    days: Vec<String>,
    /// One per product or model, largest total first.
    series: Vec<Series>,
    forecast: TrendForecast,
}

/// Daily credits of one product or model.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardSeries")]
struct Series {
    key: String,
    total: Credits,
    /// A value per day of `days`.
    values: Vec<Credits>,
}

/// The cumulative forecast from today to the period's last day, at the burn rate so far.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTrendForecast")]
struct TrendForecast {
    #[schemars(extend("items" = { "type": "string", "format": "date" }))]
    days: Vec<String>,
    values: Vec<Credits>,
}

/// The index of a local date in the aggregates' period (clamped to it).
fn day_index(agg: &Aggregates, date: NaiveDate) -> usize {
    let start = agg.key.period.start_date;
    usize::try_from((date - start).num_days()).unwrap_or(0).min(agg.day_count().saturating_sub(1))
}

/// `GET /v1/dashboard/breakdown?by=user|team|product|model|cost_center`: usage per key, sorted and paged; `format=csv` exports.
pub async fn breakdown(
    State(app): State<App>,
    who: Principal,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let (_, v) = admin_view(&app, &who, &q).await?;
    let by = q.get("by").unwrap_or("user");
    let users: Vec<Slice>;
    let slices: &[Slice] = match by {
        "product" => &v.products,
        "model" => &v.models,
        "cost_center" => &v.cost_centers,
        "team" => {
            users = drill::team_slices(&v);
            &users
        }
        "user" => {
            users = v
                .rows
                .iter()
                .filter(|r| r.events > 0)
                .map(|r| Slice { key: r.user.clone(), used: r.used, events: r.events, users: 1 })
                .collect();
            &users
        }
        other => {
            return Err(ApiError::bad_request(
                "dashboard/bad-by",
                format!(
                    "`by` must be `user`, `team`, `product`, `model` or `cost_center`, not `{}`",
                    crate::api::shorten(other)
                ),
            ));
        }
    };
    let sort = q.get("sort").unwrap_or("used");
    let key: fn(&Slice) -> (i128, &str) = match sort {
        "used" => |s| (i128::from(s.used), &*s.key),
        "events" => |s| (i128::from(s.events), &*s.key),
        "key" => |s| (0, &*s.key),
        other => {
            return Err(ApiError::bad_request(
                "dashboard/bad-sort",
                format!("`sort` must be `used`, `events` or `key`, not `{}`", crate::api::shorten(other)),
            ));
        }
    };
    let desc = order_of(&q, sort != "key")?;
    let needle = q.get("q").map(str::to_lowercase).filter(|s| !s.is_empty());
    let csv = q.wants_csv()?;
    let limit = if csv { None } else { Some(q.page_size(PAGE, MAX_PAGE)?) };
    let total = v.totals.used;
    let matches: Vec<&Slice> = slices
        .iter()
        .filter(|s| needle.as_ref().is_none_or(|n| s.key.to_lowercase().contains(n.as_str())))
        .collect();
    let paged = page(matches, |s| key(s), desc, q.get("after"), limit)?;
    let share = |s: &Slice| Credits::from_micros(s.used).percent_of(Credits::from_micros(total));
    if csv {
        let mut out = format!("{by},used,events,users,share\n");
        for s in paged.rows() {
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&s.key),
                Credits::from_micros(s.used),
                s.events,
                s.users,
                share(s).map(|p| p.to_string()).unwrap_or_default()
            ));
        }
        return Ok(csv_response(&format!("breakdown-{by}.csv"), out));
    }
    let data = paged.map(|s| BreakdownRow {
        key: s.key.to_string(),
        used: Credits::from_micros(s.used),
        events: s.events,
        users: s.users,
        share: share(s),
    });
    Ok(data.into_response())
}

/// A row of `/v1/dashboard/breakdown`: one user, team, product, model or cost center.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardBreakdownRow")]
pub(crate) struct BreakdownRow {
    key: String,
    used: Credits,
    events: u64,
    /// Users with usage.
    users: u64,
    /// Percent of the workspace's usage, two decimals; null when nothing was used.
    share: Option<f64>,
}

/// `GET /v1/me`: the caller's own budget (a user token), or `{"role": "admin"}`.
pub async fn me(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    // read before answering anyone: a bad `now` or `fresh` is refused for the admin too
    let (now, fixed) = now_of(&q)?;
    let fresh = fresh_of(&q)?;
    let user = match &who {
        Principal::Admin => return Ok(axum::Json(MeOut { budget: None, role: "admin" }).into_response()),
        Principal::User(u) => u.clone(),
    };
    let key = period_key(&app, now)?;
    // a user token may fix `now` inside the period being shown, never make the service load another
    if fixed && !app.dashboard.holds(key)? && period_key(&app, Utc::now())? != key {
        return Err(ApiError::forbidden("only the admin token may look at another period"));
    }
    let v = view(&app, key, fresh).await?;
    let budget = budget_of(&app, &key, now, &v, user).await?;
    Ok(axum::Json(MeOut { budget: Some(budget), role: "user" }).into_response())
}

/// The answer of `/v1/me`: the admin's role alone, or a user's budget and role.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Me")]
pub(crate) struct MeOut {
    #[serde(flatten)]
    budget: Option<Budget>,
    #[schemars(extend("enum" = ["admin", "user"]))]
    role: &'static str,
}

/// One user's budget this period.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct Budget {
    user: String,
    period: PeriodOut,
    group: Option<String>,
    /// The team the user counts in; null without one.
    team: Option<TeamBrief>,
    limit: Option<Credits>,
    /// The user's product and model caps; null without an applied limit.
    caps: Option<Caps>,
    used: Credits,
    /// The limit's remainder bounded by the pool's; null without a limit.
    remaining: Option<Credits>,
    /// Percent of the limit used, two decimals; null without a limit or for a zero one.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
    /// True when usage stops: under hard enforcement, the limit, the pool or a cap is used up.
    blocked: bool,
    /// The workspace's enforcement: `hard` stops usage at the limit (`blocked`), `soft`
    /// only alerts, so a user past their limit is over it and not blocked.
    #[schemars(extend("enum" = ["hard", "soft"]))]
    enforcement: &'static str,
    #[schemars(with = "BTreeMap<String, Credits>")]
    products: Map<String, Value>,
    #[schemars(with = "BTreeMap<String, Credits>")]
    models: Map<String, Value>,
    forecast: Forecast,
    /// Credits per local day of the period so far.
    daily: Vec<DayCredits>,
    /// The history of the user's limit, from the audit log.
    history: Vec<LimitChange>,
}

/// The team a user counts in, as their budget shows it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "BudgetTeam")]
struct TeamBrief {
    group: String,
    members: usize,
    used: Credits,
    budget: Credits,
    #[schemars(extend("enum" = ["pool", "members"]))]
    budget_kind: &'static str,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
}

/// A user's caps by product and by model.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "BudgetCaps")]
struct Caps {
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
}

/// Where the user's usage is heading.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "BudgetForecast")]
struct Forecast {
    /// Linear, at the burn rate so far; under hard enforcement no more than the user may
    /// still spend (their remaining credits, bounded by their team pool).
    used_at_end: Credits,
    /// The local day the limit is (or was) reached; null when it is not this period.
    #[schemars(extend("format" = "date"))]
    limit_reached_on: Option<String>,
}

/// A user's credits on one local day.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "BudgetDay")]
struct DayCredits {
    #[schemars(extend("format" = "date"))]
    day: String,
    credits: Credits,
}

/// A change of the user's limit.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "LimitChange")]
struct LimitChange {
    #[schemars(extend("format" = "date-time"))]
    at: String,
    #[schemars(extend("enum" = ["limit.set", "limit.remove"]))]
    action: String,
    old: Option<Credits>,
    new: Option<Credits>,
    commit: Option<String>,
}

/// One user's budget this period: what `/v1/me` answers a user, and the admin's page of
/// a person (`drill`) starts from.
async fn budget_of(
    app: &App,
    key: &PeriodKey,
    now: DateTime<Utc>,
    v: &View,
    user: String,
) -> ApiResult<Budget> {
    let key = *key;
    let row = v.row(&user).cloned();
    let (products, models, daily_micros, cells_used) = {
        let live = app.dashboard.live()?;
        let agg = agg_for(&live, v);
        let u = agg.and_then(|a| a.users.get(user.as_str()));
        let (products, models) = agg.map_or((Map::new(), Map::new()), |a| usage_maps(a, u));
        let today = now.with_timezone(&key.tz).date_naive();
        let daily: Vec<(NaiveDate, i64)> = match agg {
            Some(a) => {
                let shown = a.day_count().min(day_index(a, today) + 1);
                let mut values = vec![0i64; shown];
                for &(d, m) in u.map_or(&[][..], |u| u.daily.as_slice()) {
                    if let Some(slot) = values.get_mut(usize::from(d)) {
                        *slot = slot.saturating_add(m);
                    }
                }
                values.into_iter().enumerate().filter_map(|(d, m)| a.date(d).map(|date| (date, m))).collect()
            }
            None => Vec::new(),
        };
        // the day the limit was reached, for a user past it, from every day of the period
        let cumulative: Vec<(NaiveDate, i64)> = match (agg, u) {
            (Some(a), Some(u)) => {
                u.daily.iter().filter_map(|&(d, m)| a.date(usize::from(d)).map(|x| (x, m))).collect()
            }
            _ => Vec::new(),
        };
        (products, models, daily, cumulative)
    };
    let limit = v.row(&user).and_then(|r| r.limit);
    let used = row.as_ref().map_or(0, |r| r.used);
    let reached_on = match limit {
        None => None,
        Some(l) if used >= l => {
            let mut sum = 0i64;
            cells_used
                .iter()
                .find(|(_, m)| {
                    sum = sum.saturating_add(*m);
                    sum >= l
                })
                .map(|(d, _)| *d)
        }
        Some(_) if used <= 0 => None,
        Some(l) => {
            let (done, _) = elapsed(&key, now);
            let secs = i128::from(l - used) * done / i128::from(used);
            let at = now.timestamp().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
            (at < key.period.end.timestamp())
                .then(|| DateTime::from_timestamp(at, 0).map(|t| t.with_timezone(&key.tz).date_naive()))
                .flatten()
        }
    };
    let caps = app
        .ledger()?
        .limit_of(&user)
        .map(|l| Caps { products: l.limit.products.clone(), models: l.limit.models.clone() });
    let subject = user.clone();
    let history = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(crate::store::LIMIT_HISTORY_SQL)?;
            let rows = stmt
                .query_map([subject], |r| {
                    // audit rows hold `{"limit": {"credits", ...}, "group", "source"}`
                    let credits = |text: Option<String>| {
                        text.and_then(|t| serde_json::from_str::<Value>(&t).ok()).and_then(|v| {
                            serde_json::from_value::<Credits>(v["limit"]["credits"].clone()).ok()
                        })
                    };
                    Ok(LimitChange {
                        at: rfc3339(r.get(0)?),
                        action: r.get(1)?,
                        old: credits(r.get(2)?),
                        new: credits(r.get(3)?),
                        commit: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let status = row.as_ref().and_then(|r| r.status);
    // under hard enforcement a user spends no more than what is left to them
    let used_at_end = {
        let projected = Credits::from_micros(project(used, &key, now));
        match row.as_ref().and_then(Row::standing) {
            Some(s) => s.bounded_forecast(&v.rules, Credits::from_micros(used), projected),
            None => projected,
        }
    };
    let team = row.as_ref().and_then(Row::team).and_then(|g| v.team(g)).map(|t| TeamBrief {
        group: t.group.to_string(),
        members: t.members,
        used: Credits::from_micros(t.used),
        budget: Credits::from_micros(t.budget()),
        budget_kind: if t.pool.is_some() { "pool" } else { "members" },
        status: t.status(&v.rules).as_str(),
    });
    Ok(Budget {
        user,
        period: period_of(&key, now),
        group: row.as_ref().and_then(|r| r.group.as_deref()).map(str::to_string),
        team,
        limit: limit.map(Credits::from_micros),
        caps,
        used: Credits::from_micros(used),
        remaining: row.as_ref().and_then(|r| r.remaining).map(Credits::from_micros),
        percent: row.as_ref().and_then(|r| r.percent),
        status: view::status_str(status),
        blocked: row.as_ref().is_some_and(Row::blocked),
        enforcement: if v.rules.hard { "hard" } else { "soft" },
        products,
        models,
        forecast: Forecast { used_at_end, limit_reached_on: reached_on.map(|d| d.to_string()) },
        daily: daily_micros
            .iter()
            .map(|(d, m)| DayCredits { day: d.to_string(), credits: Credits::from_micros(*m) })
            .collect(),
        history,
    })
}
