//! The check ledger: applied limits, period usage and open reservations, in memory.
//!
//! `check` answers "may this user spend N now?" by reserving the worst case
//! against the user's total, the product cap, the model cap and the group's pool
//! at once, under the one mutex that guards the ledger, so concurrent checks can
//! never together pass a limit. A reservation is later committed (the actual
//! amount becomes usage) or released, or it expires. The database stays the
//! record: the ledger mirrors committed usage and applied limits, updated by the
//! store's writer thread after each commit (see [`crate::store::Store::write`]).
//! Reservations live here; the store keeps a copy so they survive a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use budgit_engine::model::{Enforcement, Limit, Period};
use budgit_engine::period::{PeriodRange, period_containing};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Workspace settings the ledger needs: the budget period and what 100% means.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The budget period.
    pub period: Period,
    /// The workspace time zone.
    pub timezone: chrono_tz::Tz,
    /// Hard stops at 100%; soft only alerts.
    pub enforcement: Enforcement,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { period: Period::Month, timezone: chrono_tz::UTC, enforcement: Enforcement::Hard }
    }
}

/// A user's applied limit and the group whose pool applies.
#[derive(Debug, Clone, PartialEq)]
pub struct UserLimit {
    /// The limit.
    pub limit: Limit,
    /// The group whose pool applies, if any.
    pub group: Option<String>,
}

/// Micro-credit sums of one user: total, per product, per model.
#[derive(Debug, Clone, Default)]
struct Totals {
    total: i64,
    products: HashMap<String, i64>,
    models: HashMap<String, i64>,
}

impl Totals {
    fn add(&mut self, product: &str, model: &str, micros: i64) {
        self.total = self.total.saturating_add(micros);
        add_to(&mut self.products, product, micros);
        add_to(&mut self.models, model, micros);
    }
}

fn add_to(map: &mut HashMap<String, i64>, key: &str, micros: i64) {
    match map.get_mut(key) {
        Some(v) => *v = v.saturating_add(micros),
        None => {
            map.insert(key.to_string(), micros);
        }
    }
}

/// An open reservation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// Its id.
    pub id: String,
    /// The user.
    pub user: String,
    /// The product.
    pub product: String,
    /// The model.
    pub model: String,
    /// The credits held, in micro-credits.
    pub micros: i64,
    /// The pool the hold counts against.
    pub group: Option<String>,
    /// When it lapses (unix seconds).
    pub expires_at: i64,
    /// True while its commit is being written; it cannot expire or be released then.
    pub committing: bool,
}

/// Which limit decided a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deciding {
    /// The user's total.
    User,
    /// The product cap.
    ProductCap,
    /// The model cap.
    ModelCap,
    /// The group's pool.
    Pool,
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the spend may go ahead.
    pub allowed: bool,
    /// The reservation made (when allowed).
    pub reservation: Option<Reservation>,
    /// What is left of the deciding limit after the reservation (before it, when denied).
    pub remaining: i64,
    /// The limit with the least room.
    pub deciding: Deciding,
    /// True when soft enforcement let a spend past a limit through.
    pub over_limit: bool,
    /// Why there was no limit to check against, when so.
    pub no_limit: bool,
}

/// What a check asks.
#[derive(Debug, Clone)]
pub struct CheckRequest<'a> {
    /// The user.
    pub user: &'a str,
    /// The product.
    pub product: &'a str,
    /// The model.
    pub model: &'a str,
    /// The worst case, in micro-credits (positive).
    pub micros: i64,
}

/// Why a commit or release was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationError {
    /// No open reservation has this id (never made, expired, committed or released).
    Unknown,
    /// The reservation belongs to another user.
    NotYours,
    /// Its commit is being written right now.
    Busy,
    /// The actual amount exceeds the reservation and the difference does not fit.
    Exceeds {
        /// What is left of the deciding limit.
        remaining: i64,
        /// The deciding limit.
        deciding: Deciding,
    },
}

/// One user's standing this period (see [`Ledger::standings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UserStanding {
    /// The user's email.
    pub user: String,
    /// The applied limit, if any.
    pub limit: Option<UserLimit>,
    /// Micro-credits used this period.
    pub used: i64,
    /// Used per product, sorted by product.
    pub products: Vec<(String, i64)>,
    /// Used per model, sorted by model.
    pub models: Vec<(String, i64)>,
}

/// Usage to add when the ledger is loaded: (user, product, model, micro-credits).
pub type UsageRow = (String, String, String, i64);

/// The in-memory ledger; always used behind one mutex.
#[derive(Debug, Default)]
pub struct Ledger {
    settings: Settings,
    period: Option<PeriodRange>,
    limits: HashMap<String, UserLimit>,
    pools: HashMap<String, i64>,
    used: HashMap<String, Totals>,
    reserved: HashMap<String, Totals>,
    group_used: HashMap<String, i64>,
    group_reserved: HashMap<String, i64>,
    reservations: HashMap<String, Reservation>,
    expiry: BTreeSet<(i64, String)>,
}

impl Ledger {
    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The period whose usage the ledger holds, once loaded.
    pub fn period(&self) -> Option<PeriodRange> {
        self.period
    }

    /// True when `now` lies in the loaded period (otherwise reload usage first).
    pub fn is_current(&self, now: DateTime<Utc>) -> bool {
        self.period.is_some_and(|p| p.contains(now))
    }

    /// The period containing `now` under the current settings.
    pub fn period_for(settings: &Settings, now: DateTime<Utc>) -> PeriodRange {
        period_containing(settings.period, &settings.timezone, now)
    }

    /// Replaces settings, period and usage (reservations and limits are kept).
    pub fn load_usage(&mut self, settings: Settings, period: PeriodRange, rows: Vec<UsageRow>) {
        self.settings = settings;
        self.period = Some(period);
        self.used.clear();
        for (user, product, model, micros) in rows {
            self.used.entry(user).or_default().add(&product, &model, micros);
        }
        self.regroup();
    }

    /// Sets or removes users' limits and groups' pools, then recomputes pool sums.
    pub fn apply_limits(
        &mut self,
        limits: impl IntoIterator<Item = (String, Option<UserLimit>)>,
        pools: impl IntoIterator<Item = (String, Option<i64>)>,
    ) {
        for (user, limit) in limits {
            match limit {
                Some(l) => self.limits.insert(user, l),
                None => self.limits.remove(&user),
            };
        }
        for (group, pool) in pools {
            match pool {
                Some(p) => self.pools.insert(group, p),
                None => self.pools.remove(&group),
            };
        }
        self.regroup();
    }

    /// Recomputes pool usage and holds from per-user sums and current groups.
    fn regroup(&mut self) {
        self.group_used.clear();
        for (user, totals) in &self.used {
            if let Some(group) = self.limits.get(user).and_then(|l| l.group.as_ref()) {
                add_to(&mut self.group_used, group, totals.total);
            }
        }
        self.group_reserved.clear();
        for r in self.reservations.values_mut() {
            r.group = self.limits.get(&r.user).and_then(|l| l.group.clone());
            if let Some(group) = &r.group {
                add_to(&mut self.group_reserved, group, r.micros);
            }
        }
    }

    /// Adds committed usage that happened at `ts` (ignored outside the loaded period).
    pub fn add_usage(&mut self, user: &str, product: &str, model: &str, micros: i64, ts: DateTime<Utc>) {
        if !self.period.is_some_and(|p| p.contains(ts)) {
            return;
        }
        match self.used.get_mut(user) {
            Some(t) => t.add(product, model, micros),
            None => {
                let mut t = Totals::default();
                t.add(product, model, micros);
                self.used.insert(user.to_string(), t);
            }
        }
        if let Some(group) = self.limits.get(user).and_then(|l| l.group.as_ref()) {
            add_to(&mut self.group_used, group, micros);
        }
    }

    /// Drops reservations that lapsed at `now`; returns their ids.
    pub fn expire(&mut self, now: i64) -> Vec<String> {
        let mut gone = Vec::new();
        while let Some((at, id)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            let committing = self.reservations.get(&id).is_some_and(|r| r.committing);
            if committing {
                continue;
            }
            if let Some(r) = self.reservations.remove(&id) {
                self.unhold(&r, r.micros);
                gone.push(id);
            }
        }
        gone
    }

    /// Restores a reservation read back from the store at startup.
    pub fn restore(&mut self, mut r: Reservation) {
        r.committing = false;
        r.group = self.limits.get(&r.user).and_then(|l| l.group.clone());
        self.hold(&r, r.micros);
        self.expiry.insert((r.expires_at, r.id.clone()));
        self.reservations.insert(r.id.clone(), r);
    }

    fn hold(&mut self, r: &Reservation, micros: i64) {
        self.reserved.entry(r.user.clone()).or_default().add(&r.product, &r.model, micros);
        if let Some(group) = &r.group {
            add_to(&mut self.group_reserved, group, micros);
        }
    }

    fn unhold(&mut self, r: &Reservation, micros: i64) {
        if let Some(t) = self.reserved.get_mut(&r.user) {
            t.add(&r.product, &r.model, -micros);
        }
        if let Some(group) = &r.group {
            add_to(&mut self.group_reserved, group, -micros);
        }
    }

    /// The room left under each limit that applies to a spend, smallest first.
    fn room(&self, user: &str, product: &str, model: &str) -> Option<(i64, Deciding)> {
        let applied = self.limits.get(user)?;
        let used = self.used.get(user);
        let held = self.reserved.get(user);
        let sum = |f: &dyn Fn(&Totals) -> i64| used.map_or(0, f).saturating_add(held.map_or(0, f));
        let mut best = (applied.limit.credits.micros().saturating_sub(sum(&|t| t.total)), Deciding::User);
        let mut consider = |room: i64, which: Deciding| {
            if room < best.0 {
                best = (room, which);
            }
        };
        if let Some(cap) = applied.limit.products.get(product) {
            let spent = sum(&|t| t.products.get(product).copied().unwrap_or(0));
            consider(cap.micros().saturating_sub(spent), Deciding::ProductCap);
        }
        if let Some(cap) = applied.limit.models.get(model) {
            let spent = sum(&|t| t.models.get(model).copied().unwrap_or(0));
            consider(cap.micros().saturating_sub(spent), Deciding::ModelCap);
        }
        if let Some(group) = &applied.group
            && let Some(pool) = self.pools.get(group)
        {
            let spent = self
                .group_used
                .get(group)
                .copied()
                .unwrap_or(0)
                .saturating_add(self.group_reserved.get(group).copied().unwrap_or(0));
            consider(pool.saturating_sub(spent), Deciding::Pool);
        }
        Some(best)
    }

    /// Decides a spend and, when allowed, reserves it until `expires_at`.
    pub fn check(&mut self, req: &CheckRequest<'_>, now: i64, expires_at: i64, id: String) -> Decision {
        self.expire(now);
        let Some((room, deciding)) = self.room(req.user, req.product, req.model) else {
            return Decision {
                allowed: false,
                reservation: None,
                remaining: 0,
                deciding: Deciding::User,
                over_limit: false,
                no_limit: true,
            };
        };
        let fits = req.micros <= room;
        let soft = self.settings.enforcement == Enforcement::Soft;
        if !fits && !soft {
            return Decision {
                allowed: false,
                reservation: None,
                remaining: room.max(0),
                deciding,
                over_limit: false,
                no_limit: false,
            };
        }
        let r = Reservation {
            id: id.clone(),
            user: req.user.to_string(),
            product: req.product.to_string(),
            model: req.model.to_string(),
            micros: req.micros,
            group: self.limits.get(req.user).and_then(|l| l.group.clone()),
            expires_at,
            committing: false,
        };
        self.hold(&r, r.micros);
        self.expiry.insert((expires_at, id.clone()));
        self.reservations.insert(id, r.clone());
        Decision {
            allowed: true,
            reservation: Some(r),
            remaining: room.saturating_sub(req.micros),
            deciding,
            over_limit: !fits,
            no_limit: false,
        }
    }

    /// Starts committing `actual` micro-credits against a reservation.
    ///
    /// When `actual` exceeds the hold, the difference must fit (hard enforcement)
    /// and is held too. The reservation is then frozen until [`Ledger::finish_commit`].
    pub fn begin_commit(
        &mut self,
        id: &str,
        owner: Option<&str>,
        actual: i64,
        now: i64,
    ) -> Result<Reservation, ReservationError> {
        let r = match self.reservations.get(id) {
            None => return Err(ReservationError::Unknown),
            Some(r) if r.committing => return Err(ReservationError::Busy),
            Some(r) if r.expires_at <= now => {
                self.expire(now);
                return Err(ReservationError::Unknown);
            }
            Some(r) if owner.is_some_and(|o| o != r.user) => return Err(ReservationError::NotYours),
            Some(r) => r.clone(),
        };
        if actual > r.micros {
            let extra = actual - r.micros;
            let (room, deciding) = self.room(&r.user, &r.product, &r.model).unwrap_or((0, Deciding::User));
            if extra > room && self.settings.enforcement == Enforcement::Hard {
                return Err(ReservationError::Exceeds { remaining: room.max(0), deciding });
            }
            self.hold(&r, extra);
        }
        let mut frozen = r.clone();
        frozen.committing = true;
        frozen.micros = r.micros.max(actual);
        self.reservations.insert(id.to_string(), frozen);
        Ok(r)
    }

    /// Ends a commit: on success the hold becomes usage (at `ts`); on failure the reservation reopens.
    pub fn finish_commit(&mut self, original: &Reservation, actual: i64, ts: DateTime<Utc>, ok: bool) {
        let Some(frozen) = self.reservations.get(&original.id).cloned() else { return };
        if ok {
            self.reservations.remove(&original.id);
            self.expiry.remove(&(original.expires_at, original.id.clone()));
            self.unhold(&frozen, frozen.micros);
            self.add_usage(&frozen.user, &frozen.product, &frozen.model, actual, ts);
        } else {
            self.unhold(&frozen, frozen.micros - original.micros);
            let mut back = original.clone();
            back.group = frozen.group;
            back.committing = false;
            // expiry may have passed over it while it was frozen: put it back in line
            self.expiry.insert((back.expires_at, back.id.clone()));
            self.reservations.insert(original.id.clone(), back);
        }
    }

    /// Releases an open reservation.
    pub fn release(&mut self, id: &str, owner: Option<&str>) -> Result<Reservation, ReservationError> {
        match self.reservations.get(id) {
            None => return Err(ReservationError::Unknown),
            Some(r) if r.committing => return Err(ReservationError::Busy),
            Some(r) if owner.is_some_and(|o| o != r.user) => return Err(ReservationError::NotYours),
            Some(_) => {}
        }
        let Some(r) = self.reservations.remove(id) else { return Err(ReservationError::Unknown) };
        self.expiry.remove(&(r.expires_at, r.id.clone()));
        self.unhold(&r, r.micros);
        Ok(r)
    }

    /// A user's applied limit.
    pub fn limit_of(&self, user: &str) -> Option<&UserLimit> {
        self.limits.get(user)
    }

    /// A user's usage this period, total and by product and model (micro-credits).
    pub fn usage_of(&self, user: &str) -> (i64, BTreeMap<String, i64>, BTreeMap<String, i64>) {
        self.used.get(user).map_or((0, BTreeMap::new(), BTreeMap::new()), |t| {
            (
                t.total,
                t.products.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                t.models.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            )
        })
    }

    /// Every user with a limit or usage this period, for the console's views.
    ///
    /// A copy, so the caller can sort and page it without holding the ledger's
    /// lock; callers cache it rather than taking it per request.
    pub fn standings(&self) -> Vec<UserStanding> {
        let mut users: Vec<&String> = self.limits.keys().chain(self.used.keys()).collect();
        users.sort_unstable();
        users.dedup();
        users
            .into_iter()
            .map(|user| {
                let (used, products, models) = self.usage_of(user);
                UserStanding {
                    user: user.clone(),
                    limit: self.limits.get(user).cloned(),
                    used,
                    products: products.into_iter().collect(),
                    models: models.into_iter().collect(),
                }
            })
            .collect()
    }

    /// Every group pool: (group, pool in micro-credits, used this period by its members).
    pub fn pool_standings(&self) -> Vec<(String, i64, i64)> {
        let mut pools: Vec<(String, i64, i64)> = self
            .pools
            .iter()
            .map(|(g, pool)| (g.clone(), *pool, self.group_used.get(g).copied().unwrap_or(0)))
            .collect();
        pools.sort_unstable();
        pools
    }

    /// Number of open reservations.
    pub fn open_reservations(&self) -> usize {
        self.reservations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use budgit_engine::Credits;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-15T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        let settings = Settings::default();
        let period = Ledger::period_for(&settings, now());
        l.load_usage(settings, period, vec![("a@x.com".into(), "codex".into(), "m".into(), 90_000_000)]);
        let mut limit = Limit { credits: Credits::from_whole(100), ..Default::default() };
        limit.products.insert("codex".into(), Credits::from_whole(95));
        l.apply_limits(
            [
                ("a@x.com".to_string(), Some(UserLimit { limit: limit.clone(), group: Some("eng".into()) })),
                ("b@x.com".to_string(), Some(UserLimit { limit, group: Some("eng".into()) })),
            ],
            [("eng".to_string(), Some(120_000_000))],
        );
        l
    }

    fn req<'a>(user: &'a str, product: &'a str, credits: i64) -> CheckRequest<'a> {
        CheckRequest { user, product, model: "m", micros: credits * 1_000_000 }
    }

    #[test]
    fn the_smallest_room_decides() {
        let mut l = ledger();
        let t = now().timestamp();
        let d = l.check(&req("a@x.com", "codex", 6), t, t + 60, "r1".into());
        assert!(!d.allowed);
        assert_eq!((d.deciding, d.remaining), (Deciding::ProductCap, 5_000_000));
        let d = l.check(&req("a@x.com", "chatgpt", 6), t, t + 60, "r2".into());
        assert!(d.allowed);
        assert_eq!((d.deciding, d.remaining), (Deciding::User, 4_000_000));
        // the pool has 120 - 90 - 6 = 24 left; b's own total has 100
        let d = l.check(&req("b@x.com", "chatgpt", 25), t, t + 60, "r3".into());
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::Pool, 24_000_000));
    }

    #[test]
    fn holds_count_until_released_or_expired() {
        let mut l = ledger();
        let t = now().timestamp();
        assert!(l.check(&req("b@x.com", "chatgpt", 20), t, t + 60, "r1".into()).allowed);
        assert!(!l.check(&req("b@x.com", "chatgpt", 20), t, t + 60, "r2".into()).allowed);
        assert!(l.release("r1", Some("b@x.com")).is_ok());
        assert!(l.check(&req("b@x.com", "chatgpt", 20), t, t + 60, "r3".into()).allowed);
        // r3 lapses at t + 60: the room comes back
        assert!(!l.check(&req("b@x.com", "chatgpt", 20), t + 59, t + 120, "r4".into()).allowed);
        assert!(l.check(&req("b@x.com", "chatgpt", 20), t + 60, t + 120, "r5".into()).allowed);
        assert_eq!(l.release("r3", None), Err(ReservationError::Unknown));
    }

    #[test]
    fn commit_turns_the_hold_into_usage() {
        let mut l = ledger();
        let t = now().timestamp();
        assert!(l.check(&req("a@x.com", "chatgpt", 10), t, t + 60, "r1".into()).allowed);
        assert_eq!(l.begin_commit("r1", Some("b@x.com"), 1, t), Err(ReservationError::NotYours));
        let r = l.begin_commit("r1", Some("a@x.com"), 4_000_000, t).unwrap();
        assert_eq!(l.release("r1", None), Err(ReservationError::Busy));
        l.finish_commit(&r, 4_000_000, now(), true);
        assert_eq!(l.usage_of("a@x.com").0, 94_000_000);
        assert_eq!(l.open_reservations(), 0);
        // 6 left: committing more than reserved needs room for the difference
        assert!(l.check(&req("a@x.com", "chatgpt", 5), t, t + 60, "r2".into()).allowed);
        assert!(matches!(
            l.begin_commit("r2", None, 7_000_000, t),
            Err(ReservationError::Exceeds { remaining: 1_000_000, deciding: Deciding::User })
        ));
        let r = l.begin_commit("r2", None, 6_000_000, t).unwrap();
        l.finish_commit(&r, 6_000_000, now(), false);
        assert!(l.release("r2", None).is_ok());
        assert_eq!(l.check(&req("a@x.com", "chatgpt", 6), t, t + 60, "r3".into()).remaining, 0);
    }

    #[test]
    fn a_failed_commit_reopens_a_reservation_that_still_expires() {
        let mut l = ledger();
        let t = now().timestamp();
        assert!(l.check(&req("b@x.com", "chatgpt", 30), t, t + 60, "r1".into()).allowed);
        let r = l.begin_commit("r1", None, 30_000_000, t).unwrap();
        // its expiry passes while the commit is being written: it is not dropped then
        assert!(l.expire(t + 61).is_empty());
        l.finish_commit(&r, 30_000_000, now(), false);
        assert_eq!(l.expire(t + 61), vec!["r1".to_string()]);
        assert_eq!(l.usage_of("b@x.com").0, 0);
        assert!(l.check(&req("b@x.com", "chatgpt", 30), t + 61, t + 120, "r2".into()).allowed);
    }

    #[test]
    fn soft_enforcement_allows_and_flags() {
        let mut l = ledger();
        let settings = Settings { enforcement: Enforcement::Soft, ..Settings::default() };
        let period = Ledger::period_for(&settings, now());
        l.load_usage(settings, period, vec![]);
        let t = now().timestamp();
        let d = l.check(&req("a@x.com", "chatgpt", 500), t, t + 60, "r1".into());
        assert!(d.allowed && d.over_limit);
        let d = l.check(&req("nobody@x.com", "chatgpt", 1), t, t + 60, "r2".into());
        assert!(!d.allowed && d.no_limit);
    }
}
