//! The check ledger: applied limits, period usage and open reservations, in memory.
//!
//! `check` answers "may this user spend N now?" by reserving the worst case
//! against the user's total, the product cap, the model cap and the group's pool
//! at once, under the one mutex that guards the ledger, so concurrent checks can
//! never together pass a limit. A reservation is later committed (the actual
//! amount becomes usage, even past a limit: what was spent is a fact, and the
//! limit then stops the next check) or released, or it expires. A user holds at
//! most [`MAX_OPEN_HOLDS`] reservations, and a hold of more than
//! [`POOL_SHARE_PERCENT`] of a pool lives at most [`POOL_SHARE_TTL`]. The database stays the
//! record: the ledger mirrors committed usage and applied limits, updated by the
//! store's writer thread after each commit (see [`crate::store::Store::write`]).
//! Reservations live here; the store keeps a copy so they survive a restart:
//! the ledger queues the rows to write in an outbox ([`Ledger::take_outbox`])
//! that the writer thread drains once per batch.
//!
//! A check is on the hot path of every spend, so the layout is built for it:
//! a user's name and what a check reads of it (total, usage, holds, group, which
//! products and models are capped) share one cache line in the user table, so
//! with 100k users the lookup's one memory read also serves the decision; the
//! user's per-product and per-model lines are read only when a cap may apply.
//! Products, models and groups are interned once into dense ids, a reservation
//! is a small record keyed by an integer (its id becomes text only at the API
//! edge), and expiry is a timer wheel of one-second buckets that is only
//! touched when a second has passed, never walked per check.
//!
//! A rate cap (`per_hour`) bounds a user's spend in any sliding hour: the
//! committed spend of the last [`RATE_WINDOW`] seconds (by each event's own time,
//! kept per second in a [`Window`]) plus every open hold. It is one more room
//! considered under the same mutex, so it is exactly as strict as the other
//! limits. The same windows, and one per model, feed the runaway rule
//! ([`crate::runaway`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use budgit_engine::model::{Enforcement, Limit, Period};
use budgit_engine::period::{PeriodRange, period_containing};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::runaway::{self, Runaway};

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

/// An open reservation, as the API and the store see it (names spelled out).
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

/// The id of a reservation made by this ledger; text only at the API edge (`Display`).
///
/// The text is `rsv_` then 40 hex digits: a random number drawn when the ledger
/// was created (so ids never repeat across restarts, which matters because a
/// commit's default event id is derived from it), a sequence number, and a
/// random tag that makes ids hard to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationId {
    epoch: u64,
    seq: u64,
    tag: u32,
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rsv_{:016x}{:016x}{:08x}", self.epoch, self.seq, self.tag)
    }
}

impl ReservationId {
    /// Reads an id written by `Display`.
    fn parse(text: &str) -> Option<ReservationId> {
        let hex = text.strip_prefix("rsv_")?;
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(ReservationId {
            epoch: u64::from_str_radix(hex.get(..16)?, 16).ok()?,
            seq: u64::from_str_radix(hex.get(16..32)?, 16).ok()?,
            tag: u32::from_str_radix(hex.get(32..)?, 16).ok()?,
        })
    }
}

/// What a release gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// The credits the hold had, in micro-credits.
    pub micros: i64,
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
    /// The user's rate cap: spend in the last sliding hour plus open holds.
    RateCap,
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the spend may go ahead.
    pub allowed: bool,
    /// The reservation made (when allowed).
    pub reservation: Option<ReservationId>,
    /// What is left of the deciding limit after the reservation (before it, when denied).
    pub remaining: i64,
    /// The limit with the least room.
    pub deciding: Deciding,
    /// True when soft enforcement let a spend past a limit through.
    pub over_limit: bool,
    /// Why there was no limit to check against, when so.
    pub no_limit: bool,
    /// Refused because the user already has [`MAX_OPEN_HOLDS`] open reservations.
    pub too_many_holds: bool,
    /// When the reservation lapses (unix seconds): the asked time, or sooner for a
    /// hold of more than [`POOL_SHARE_PERCENT`] of a pool (see [`POOL_SHARE_TTL`]).
    pub expires_at: i64,
    /// Refused by the rate cap: seconds until enough of the last hour's spend leaves
    /// the window for this amount to fit (`None` when only releasing holds would
    /// make room, or the amount is larger than the rate cap itself).
    pub retry_after: Option<i64>,
}

impl Decision {
    fn unlimited() -> Decision {
        Decision {
            allowed: false,
            reservation: None,
            remaining: 0,
            deciding: Deciding::User,
            over_limit: false,
            no_limit: true,
            too_many_holds: false,
            expires_at: 0,
            retry_after: None,
        }
    }
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

/// Reservation rows to write and ids to delete, drained from the ledger (see [`Ledger::take_outbox`]).
#[derive(Debug, Default)]
pub struct Outbox {
    /// Holds to store (new, or reopened after a failed commit).
    pub put: Vec<Reservation>,
    /// Ids of stored holds that ended (released or expired).
    pub delete: Vec<String>,
    /// When set, also drop every stored row that lapsed at or before this time
    /// ([`LATE_COMMIT_GRACE`] ago: later, no commit on them is recorded).
    pub sweep_before: Option<i64>,
}

/// Open reservations one user may have at once; a check past it is refused (a
/// caller that never commits or releases cannot fill memory and the store).
pub const MAX_OPEN_HOLDS: u16 = 1000;
/// A hold of more than this share of the user's team pool (percent) lives at most
/// [`POOL_SHARE_TTL`], so one caller cannot keep most of a team's pool reserved.
pub const POOL_SHARE_PERCENT: i64 = 25;
/// The longest life of a hold past [`POOL_SHARE_PERCENT`] of a pool (seconds).
pub const POOL_SHARE_TTL: i64 = 60;

/// The rate cap's window: a sliding hour (seconds).
pub const RATE_WINDOW: i64 = 3600;

/// Marks "none" in u32 id fields (no group, not in the timer wheel).
const NONE: u32 = u32::MAX;
/// Marks a hold waiting in the wheel's overdue list.
const OVERDUE: u32 = u32::MAX - 1;
/// Buckets of the timer wheel (one second each); longer lives wrap around.
const WHEEL: usize = 4096;
/// How often lapsed rows are swept from the store (seconds).
const STORE_SWEEP_EVERY: i64 = 300;
/// How long after a hold lapsed a commit on it is still recorded (seconds): its
/// stored row is kept that long.
pub const LATE_COMMIT_GRACE: i64 = 86_400;

/// Hashes integer keys (reservation sequence numbers, made by the ledger) with one multiply.
#[derive(Debug, Default, Clone, Copy)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

/// Hashes names (emails, products, models, groups): foldhash reads eight bytes per step
/// where SipHash, the standard map's default, was a large part of a check's cost for an
/// email of ~20 bytes; its per-map random seed keeps collisions from being worked out
/// ahead of time.
type NameState = foldhash::fast::RandomState;

/// Bytes of a name kept in the map's own table (most emails fit).
const SHORT_NAME: usize = 31;

/// A short name as a map key, its bytes inline: a lookup compares them in the
/// table itself instead of following a pointer to a heap string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShortName {
    len: u8,
    bytes: [u8; SHORT_NAME],
}

impl ShortName {
    fn new(name: &str) -> Option<ShortName> {
        let len = u8::try_from(name.len()).ok().filter(|&n| usize::from(n) <= SHORT_NAME)?;
        let mut bytes = [0u8; SHORT_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(ShortName { len, bytes })
    }
}

impl ShortName {
    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

// Hashes and compares as the name's bytes, so a lookup borrows the caller's `&str` as
// `[u8]` instead of copying it into a key first (the copy's stores, read straight back
// by the hash, stalled a check).
impl std::hash::Hash for ShortName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for ShortName {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Names interned to dense ids, and back.
#[derive(Debug, Default)]
struct Names {
    short: HashMap<ShortName, u32, NameState>,
    long: HashMap<String, u32, NameState>,
    names: Vec<String>,
}

impl Names {
    fn get(&self, name: &str) -> Option<u32> {
        if name.len() <= SHORT_NAME {
            self.short.get(name.as_bytes()).copied()
        } else {
            self.long.get(name).copied()
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        // ids stay below the sentinels: the 4-billionth name would share the last id
        let id = u32::try_from(self.names.len()).unwrap_or(OVERDUE - 1).min(OVERDUE - 1);
        self.names.push(name.to_string());
        match ShortName::new(name) {
            Some(key) => self.short.insert(key, id),
            None => self.long.insert(name.to_string(), id),
        };
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

/// Bytes of a user's name kept in its table entry; longer names are compared
/// against the interned string (one more memory read, only for them).
const INLINE_USER: usize = 26;

/// [`Hot::flags`]: the entry holds a user.
const OCCUPIED: u8 = 1;
/// [`Hot::flags`]: the user has an applied limit.
const LIMITED: u8 = 2;
/// [`Hot::flags`]: the name is longer than [`INLINE_USER`]; `name` starts with its hash.
const LONG: u8 = 4;
/// [`Hot::flags`]: the user's applied limit has a rate cap (its value is in the [`UserSlot`]).
const RATED: u8 = 8;

/// The bit of [`Hot::caps`] a product id maps to.
fn product_bit(p: u32) -> u16 {
    1 << (p % 8)
}

/// The bit of [`Hot::caps`] a model id maps to.
fn model_bit(m: u32) -> u16 {
    1 << (8 + m % 8)
}

/// One user's entry in the name table: the name and everything a check reads when
/// no product or model cap applies, in one cache line, so the lookup's memory read
/// also serves the decision. The rest of the user (caps and usage by product and
/// model, the limit as given) is in a [`UserSlot`], read only when a cap may apply.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Hot {
    /// The applied total (when [`LIMITED`]).
    total: i64,
    used: i64,
    held: i64,
    /// The group whose pool applies, or [`NONE`].
    group: u32,
    /// The user's dense id (index of its [`UserSlot`] and name).
    id: u32,
    /// Which products and models may be capped ([`product_bit`], [`model_bit`]):
    /// a check whose bits are clear here skips the user's lines.
    caps: u16,
    /// Open reservations ([`MAX_OPEN_HOLDS`] at most).
    open: u16,
    flags: u8,
    /// Length of an inline name.
    len: u8,
    /// The name's bytes, or (when [`LONG`]) its hash's.
    name: [u8; INLINE_USER],
}

impl Hot {
    const EMPTY: Hot = Hot {
        total: 0,
        used: 0,
        held: 0,
        group: NONE,
        id: 0,
        caps: 0,
        open: 0,
        flags: 0,
        len: 0,
        name: [0; INLINE_USER],
    };

    fn limited(&self) -> bool {
        self.flags & LIMITED != 0
    }
}

/// Users: an open-addressing table of [`Hot`] entries keyed by name (linear probing,
/// at most half full, so a lookup almost always reads one line), and names by id.
#[derive(Debug, Default)]
struct Users {
    table: Vec<Hot>,
    len: usize,
    hasher: NameState,
    /// Names by id.
    names: Vec<String>,
    /// Table position by id (positions move when the table grows).
    at: Vec<u32>,
}

impl Users {
    fn hash(&self, name: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(name);
        h.finish()
    }

    fn mask(&self) -> usize {
        self.table.len().wrapping_sub(1)
    }

    fn matches(&self, e: &Hot, name: &[u8], hash: u64) -> bool {
        if e.flags & LONG == 0 {
            usize::from(e.len) == name.len() && e.name.get(..name.len()) == Some(name)
        } else {
            e.name.get(..8) == Some(&hash.to_le_bytes()[..])
                && self.names.get(e.id as usize).is_some_and(|n| n.as_bytes() == name)
        }
    }

    /// The table position of a user.
    fn find(&self, name: &str) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let (name, mask) = (name.as_bytes(), self.mask());
        let hash = self.hash(name);
        let mut i = hash as usize & mask;
        // the table is never full, so an empty entry ends every probe
        loop {
            let e = self.table.get(i)?;
            if e.flags & OCCUPIED == 0 {
                return None;
            }
            if self.matches(e, name, hash) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first empty position on `hash`'s probe.
    fn vacant(&self, hash: u64) -> usize {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.table.get(i).is_some_and(|e| e.flags & OCCUPIED != 0) {
            i = (i + 1) & mask;
        }
        i
    }

    /// The table position of a user, added when missing; `grew` is set when entries moved.
    fn intern(&mut self, name: &str, grew: &mut bool) -> usize {
        if let Some(i) = self.find(name) {
            return i;
        }
        if (self.len + 1) * 2 > self.table.len() {
            self.grow();
            *grew = true;
        }
        // ids stay below the sentinels: the 4-billionth name would share the last id
        let id = u32::try_from(self.names.len()).unwrap_or(OVERDUE - 1).min(OVERDUE - 1);
        self.names.push(name.to_string());
        let hash = self.hash(name.as_bytes());
        let mut e = Hot { id, flags: OCCUPIED, ..Hot::EMPTY };
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE_USER => {
                e.len = len;
                e.name[..name.len()].copy_from_slice(name.as_bytes());
            }
            _ => {
                e.flags |= LONG;
                e.name[..8].copy_from_slice(&hash.to_le_bytes());
            }
        }
        let i = self.vacant(hash);
        if let Some(slot) = self.table.get_mut(i) {
            *slot = e;
        }
        self.at.push(i as u32);
        self.len += 1;
        i
    }

    /// Doubles the table and puts every entry back.
    fn grow(&mut self) {
        let size = (self.table.len() * 2).max(16);
        let old = std::mem::replace(&mut self.table, vec![Hot::EMPTY; size]);
        for e in old.into_iter().filter(|e| e.flags & OCCUPIED != 0) {
            let hash = match self.names.get(e.id as usize) {
                Some(n) => self.hash(n.as_bytes()),
                None => continue,
            };
            let i = self.vacant(hash);
            if let Some(slot) = self.table.get_mut(i) {
                *slot = e;
            }
            if let Some(at) = self.at.get_mut(e.id as usize) {
                *at = i as u32;
            }
        }
    }

    /// The entry of the user with this id.
    fn of(&self, id: u32) -> Option<&Hot> {
        self.table.get(*self.at.get(id as usize)? as usize)
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

/// What a [`Line`] is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Product,
    Model,
}

/// One user's position on one product or model: its cap, committed usage and holds.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    key: u32,
    kind: Kind,
    /// Usage was recorded for it this period (reported even when it sums to zero).
    counted: bool,
    /// The applied limit caps it at `cap`.
    capped: bool,
    cap: i64,
    used: i64,
    /// Open holds on it; kept only while it is capped (only a cap's room reads it),
    /// and recounted from the holds whenever caps change.
    held: i64,
}

impl Line {
    fn is(&self, kind: Kind, key: u32) -> bool {
        self.key == key && self.kind == kind
    }

    fn spend(&self) -> i64 {
        self.used.saturating_add(self.held)
    }
}

/// Lines kept in the user's slot itself before spilling to the heap.
const INLINE_LINES: usize = 4;

/// A user's lines: the first few inline (a check then reads one slot, no other
/// memory), the rest in a vector.
#[derive(Debug, Default)]
struct Lines {
    head: [Line; INLINE_LINES],
    len: u8,
    rest: Vec<Line>,
}

impl Lines {
    fn iter(&self) -> impl Iterator<Item = &Line> {
        self.head[..usize::from(self.len)].iter().chain(self.rest.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Line> {
        self.head[..usize::from(self.len)].iter_mut().chain(self.rest.iter_mut())
    }

    #[cfg(test)]
    fn get(&self, kind: Kind, key: u32) -> Option<&Line> {
        self.iter().find(|l| l.is(kind, key))
    }

    /// The line for `kind` and `key`, added when missing.
    fn entry(&mut self, kind: Kind, key: u32) -> &mut Line {
        let len = usize::from(self.len);
        if let Some(i) = self.head[..len].iter().position(|l| l.is(kind, key)) {
            return &mut self.head[i];
        }
        let at = match self.rest.iter().position(|l| l.is(kind, key)) {
            Some(i) => i,
            None => {
                let line = Line { key, kind, ..Line::default() };
                if len < INLINE_LINES {
                    self.head[len] = line;
                    self.len += 1;
                    return &mut self.head[len];
                }
                self.rest.push(line);
                self.rest.len() - 1
            }
        };
        &mut self.rest[at]
    }
}

/// What a check reads of a user only when a cap may apply, and what the console's
/// views read: the rest is in the user's [`Hot`] entry.
#[derive(Debug, Default)]
struct UserSlot {
    /// Usage was recorded for the user this period.
    counted: bool,
    /// Caps, usage and (on capped lines) holds by product and model.
    lines: Lines,
    /// The applied limit as given (read by the console's views, not by checks).
    limit: Option<Box<UserLimit>>,
    /// The rate cap in micro-credits per sliding hour (read when [`RATED`]).
    rate: i64,
    /// Committed spend of the last hour, by second.
    recent: Window,
    /// A runaway alert for the user was written; none again before this second.
    quiet_until: i64,
}

/// Committed spend of the last [`RATE_WINDOW`], one entry per second, oldest first.
///
/// Kept for every user who spends (not only those with a rate cap), so a rate cap
/// applied now already counts the hour before it, and the runaway rule reads the
/// same numbers. It holds at most one entry per second in which the user spent.
#[derive(Debug, Default)]
pub(crate) struct Window {
    spends: VecDeque<(i64, i64)>,
    sum: i64,
}

impl Window {
    /// Adds spend at unix second `ts`. A spend older than an hour before the newest
    /// one can never count again and is not kept.
    fn add(&mut self, ts: i64, micros: i64) {
        let newest = self.spends.back().map_or(ts, |b| b.0.max(ts));
        if ts <= newest.saturating_sub(RATE_WINDOW) || micros == 0 {
            return;
        }
        match self.spends.binary_search_by_key(&ts, |e| e.0) {
            Ok(i) => {
                if let Some(e) = self.spends.get_mut(i) {
                    e.1 = e.1.saturating_add(micros);
                }
            }
            Err(i) => self.spends.insert(i, (ts, micros)),
        }
        self.sum = self.sum.saturating_add(micros);
        self.prune(newest);
    }

    /// Drops spend that left the window at `now` (at or before `now - RATE_WINDOW`).
    fn prune(&mut self, now: i64) {
        let edge = now.saturating_sub(RATE_WINDOW);
        while let Some(&(t, m)) = self.spends.front() {
            if t > edge {
                break;
            }
            self.spends.pop_front();
            self.sum = self.sum.saturating_sub(m);
        }
    }

    /// Seconds from `now` until at least `need` micro-credits have left the window.
    fn frees(&self, need: i64, now: i64) -> Option<i64> {
        let mut freed = 0i64;
        for &(t, m) in &self.spends {
            freed = freed.saturating_add(m);
            if freed >= need {
                return Some((t + RATE_WINDOW - now).max(1));
            }
        }
        None
    }
}

/// A limit compiled to ids: the limit, its caps (kind, product or model id, cap) and the group id.
type Compiled = (UserLimit, Vec<(Kind, u32, i64)>, u32);

/// A group: its pool (if any) and what its members used and hold.
#[derive(Debug, Default, Clone, Copy)]
struct GroupSlot {
    pool: Option<i64>,
    used: i64,
    held: i64,
}

/// An open reservation, by ids.
#[derive(Debug, Clone)]
struct Hold {
    user: u32,
    /// The user's position in the name table (fixed up when the table grows).
    at: u32,
    product: u32,
    model: u32,
    micros: i64,
    expires_at: i64,
    tag: u32,
    committing: bool,
    /// A row for it is in the store.
    persisted: bool,
    /// Its index in its wheel bucket, [`OVERDUE`], or [`NONE`].
    wheel: u32,
    /// The id it had in an earlier run of the service (restored holds).
    foreign: Option<Box<str>>,
}

/// Expiry: one bucket of reservation keys per second, swept as seconds pass.
#[derive(Debug)]
struct Wheel {
    buckets: Vec<Vec<u64>>,
    /// Every second up to this one has been swept.
    swept: i64,
    /// Holds that were (re)inserted already lapsed; looked at on the next sweep.
    overdue: Vec<u64>,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel { buckets: vec![Vec::new(); WHEEL], swept: i64::MIN, overdue: Vec::new() }
    }
}

fn bucket_of(at: i64) -> usize {
    at.rem_euclid(WHEEL as i64) as usize
}

/// Rows the store should write, gathered under the ledger's lock.
#[derive(Debug, Default)]
struct PendingRows {
    put: Vec<u64>,
    delete: Vec<String>,
    /// A writer job to drain this is queued.
    queued: bool,
    last_store_sweep: Option<i64>,
}

/// A small fast generator for reservation tags (xorshift64*).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A random number from the OS, or, failing that, from the clock and an address.
fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// The in-memory ledger; always used behind one mutex.
#[derive(Debug)]
pub struct Ledger {
    settings: Settings,
    period: Option<PeriodRange>,
    users: Users,
    products: Names,
    models: Names,
    group_names: Names,
    slots: Vec<UserSlot>,
    groups: Vec<GroupSlot>,
    epoch: u64,
    next_seq: u64,
    rng: Rng,
    holds: SeqMap<Hold>,
    /// Restored holds, by the id they had in an earlier run.
    foreign: HashMap<Box<str>, u64>,
    wheel: Wheel,
    outbox: PendingRows,
    /// The newest committed spend seen (unix second).
    newest: i64,
    /// Committed spend of the last hour per model id.
    model_recent: Vec<Window>,
    /// Spend this period per model id, over every user.
    model_used: Vec<i64>,
}

/// The entry `i` of a per-id vector, grown with defaults to hold it.
fn grown<T: Default>(v: &mut Vec<T>, i: u32) -> Option<&mut T> {
    let i = i as usize;
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    v.get_mut(i)
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            settings: Settings::default(),
            period: None,
            users: Users::default(),
            products: Names::default(),
            models: Names::default(),
            group_names: Names::default(),
            slots: Vec::new(),
            groups: Vec::new(),
            epoch: seed(),
            next_seq: 1,
            rng: Rng(seed() | 1),
            holds: SeqMap::default(),
            foreign: HashMap::new(),
            wheel: Wheel::default(),
            outbox: PendingRows::default(),
            newest: i64::MIN,
            model_recent: Vec::new(),
            model_used: Vec::new(),
        }
    }
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

    /// The user's table position, added when missing.
    fn user_slot(&mut self, user: &str) -> usize {
        let mut grew = false;
        let at = self.users.intern(user, &mut grew);
        let id = self.users.table.get(at).map_or(0, |e| e.id);
        while self.slots.len() <= id as usize {
            self.slots.push(UserSlot::default());
        }
        if grew {
            // entries moved: holds find their user again by id
            for h in self.holds.values_mut() {
                h.at = self.users.at.get(h.user as usize).copied().unwrap_or(NONE);
            }
        }
        at
    }

    fn group_slot(&mut self, group: &str) -> u32 {
        let id = self.group_names.intern(group);
        while self.groups.len() <= id as usize {
            self.groups.push(GroupSlot::default());
        }
        id
    }

    /// Replaces settings, period and usage (reservations and limits are kept).
    pub fn load_usage(&mut self, settings: Settings, period: PeriodRange, rows: Vec<UsageRow>) {
        self.settings = settings;
        self.period = Some(period);
        for e in &mut self.users.table {
            e.used = 0;
        }
        self.model_used.iter_mut().for_each(|u| *u = 0);
        for slot in &mut self.slots {
            slot.counted = false;
            for s in slot.lines.iter_mut() {
                s.used = 0;
                s.counted = false;
            }
        }
        for (user, product, model, micros) in rows {
            let (u, p, m) =
                (self.user_slot(&user), self.products.intern(&product), self.models.intern(&model));
            self.count(u, p, m, micros);
        }
        self.regroup();
    }

    /// Adds committed usage to a user's sums (not to the pool).
    fn count(&mut self, at: usize, p: u32, m: u32, micros: i64) {
        if let Some(used) = grown(&mut self.model_used, m) {
            *used = used.saturating_add(micros);
        }
        let Some(e) = self.users.table.get_mut(at) else { return };
        e.used = e.used.saturating_add(micros);
        let Some(slot) = self.slots.get_mut(e.id as usize) else { return };
        slot.counted = true;
        for (kind, key) in [(Kind::Product, p), (Kind::Model, m)] {
            let s = slot.lines.entry(kind, key);
            s.used = s.used.saturating_add(micros);
            s.counted = true;
        }
    }

    /// Sets or removes users' limits and groups' pools, then recomputes pool sums.
    pub fn apply_limits(
        &mut self,
        limits: impl IntoIterator<Item = (String, Option<UserLimit>)>,
        pools: impl IntoIterator<Item = (String, Option<i64>)>,
    ) {
        for (user, limit) in limits {
            match limit {
                Some(l) => {
                    let compiled = self.compile(l);
                    let at = self.user_slot(&user);
                    self.set_limit(at, Some(compiled));
                }
                None => {
                    if let Some(at) = self.users.find(&user) {
                        self.set_limit(at, None);
                    }
                }
            }
        }
        for (group, pool) in pools {
            let g = self.group_slot(&group);
            self.groups[g as usize].pool = pool;
        }
        self.regroup();
        self.rehold();
    }

    /// Sets a user's applied limit (compiled to its total, group and the lines' caps), or removes it.
    fn set_limit(&mut self, at: usize, compiled: Option<Compiled>) {
        let Some(e) = self.users.table.get_mut(at) else { return };
        let Some(slot) = self.slots.get_mut(e.id as usize) else { return };
        for line in slot.lines.iter_mut() {
            line.capped = false;
            line.cap = 0;
        }
        e.caps = 0;
        match compiled {
            Some((limit, caps, group)) => {
                e.total = limit.limit.credits.micros();
                e.group = group;
                e.flags |= LIMITED;
                match limit.limit.per_hour {
                    Some(rate) => {
                        e.flags |= RATED;
                        slot.rate = rate.micros();
                    }
                    None => e.flags &= !RATED,
                }
                for (kind, key, cap) in caps {
                    let line = slot.lines.entry(kind, key);
                    line.capped = true;
                    line.cap = cap;
                    e.caps |= match kind {
                        Kind::Product => product_bit(key),
                        Kind::Model => model_bit(key),
                    };
                }
                slot.limit = Some(Box::new(limit));
            }
            None => {
                e.total = 0;
                e.group = NONE;
                e.flags &= !(LIMITED | RATED);
                slot.limit = None;
            }
        }
    }

    /// Recounts the holds on capped lines from the open holds (caps may have changed).
    fn rehold(&mut self) {
        for slot in &mut self.slots {
            for line in slot.lines.iter_mut() {
                line.held = 0;
            }
        }
        for h in self.holds.values() {
            Self::hold_on_lines(&self.users, &mut self.slots, h.at as usize, h.product, h.model, h.micros);
        }
    }

    /// A limit compiled to ids: the limit, its caps by product and model id, and the group id.
    fn compile(&mut self, limit: UserLimit) -> Compiled {
        let mut caps = Vec::new();
        for (p, c) in &limit.limit.products {
            caps.push((Kind::Product, self.products.intern(p), c.micros()));
        }
        for (m, c) in &limit.limit.models {
            caps.push((Kind::Model, self.models.intern(m), c.micros()));
        }
        let group = match &limit.group {
            Some(g) => self.group_slot(g),
            None => NONE,
        };
        (limit, caps, group)
    }

    /// Recomputes pool usage and holds from per-user sums and current groups.
    fn regroup(&mut self) {
        for g in &mut self.groups {
            g.used = 0;
            g.held = 0;
        }
        for e in &self.users.table {
            if let Some(g) = self.groups.get_mut(e.group as usize) {
                g.used = g.used.saturating_add(e.used);
                g.held = g.held.saturating_add(e.held);
            }
        }
    }

    /// Adds committed usage that happened at `ts` (ignored outside the loaded period).
    /// The last hour's windows count it whatever its period.
    pub fn add_usage(&mut self, user: &str, product: &str, model: &str, micros: i64, ts: DateTime<Utc>) {
        let in_period = self.period.is_some_and(|p| p.contains(ts));
        if !in_period && self.is_stale(ts) {
            return;
        }
        let (at, p, m) = (self.user_slot(user), self.products.intern(product), self.models.intern(model));
        self.remember(at, m, ts.timestamp(), micros);
        if !in_period {
            return;
        }
        self.count(at, p, m, micros);
        let g = self.users.table.get(at).map_or(NONE, |e| e.group);
        if let Some(g) = self.groups.get_mut(g as usize) {
            g.used = g.used.saturating_add(micros);
        }
    }

    /// True when spend at `ts` is an hour older than the newest spend the ledger saw:
    /// it can never count in a window again.
    fn is_stale(&self, ts: DateTime<Utc>) -> bool {
        ts.timestamp() <= self.newest.saturating_sub(RATE_WINDOW)
    }

    /// Adds committed spend at unix second `ts` to the user's and the model's last-hour windows.
    fn remember(&mut self, at: usize, m: u32, ts: i64, micros: i64) {
        self.newest = self.newest.max(ts);
        if let Some(e) = self.users.table.get(at)
            && let Some(slot) = self.slots.get_mut(e.id as usize)
        {
            slot.recent.add(ts, micros);
        }
        if let Some(w) = grown(&mut self.model_recent, m) {
            w.add(ts, micros);
        }
    }

    /// Loads the last hour's committed spend (user, model, unix second, micro-credits),
    /// read from the store at start.
    pub fn load_recent(&mut self, rows: Vec<(String, String, i64, i64)>) {
        for (user, model, ts, micros) in rows {
            let (at, m) = (self.user_slot(&user), self.models.intern(&model));
            self.remember(at, m, ts, micros);
        }
    }

    /// Adds `micros` (negative to give back) to what a user holds on a product and model.
    fn hold_on(&mut self, at: usize, p: u32, m: u32, micros: i64) {
        let Some(e) = self.users.table.get_mut(at) else { return };
        e.held = e.held.saturating_add(micros);
        let g = e.group;
        Self::hold_on_lines(&self.users, &mut self.slots, at, p, m, micros);
        if let Some(g) = self.groups.get_mut(g as usize) {
            g.held = g.held.saturating_add(micros);
        }
    }

    /// Adds `micros` to the user's capped lines for this product and model (the only
    /// lines whose holds are kept); the user's lines are not read when neither is capped.
    fn hold_on_lines(users: &Users, slots: &mut [UserSlot], at: usize, p: u32, m: u32, micros: i64) {
        let Some(e) = users.table.get(at) else { return };
        if e.caps & (product_bit(p) | model_bit(m)) == 0 {
            return;
        }
        let Some(slot) = slots.get_mut(e.id as usize) else { return };
        for line in slot.lines.iter_mut() {
            if line.capped && (line.is(Kind::Product, p) || line.is(Kind::Model, m)) {
                line.held = line.held.saturating_add(micros);
            }
        }
    }

    /// The room left under each limit that applies to a spend, smallest first.
    fn room(&self, at: usize, product: Option<u32>, model: Option<u32>) -> Option<(i64, Deciding)> {
        let e = self.users.table.get(at)?;
        if !e.limited() {
            return None;
        }
        let mut best = (e.total.saturating_sub(e.used.saturating_add(e.held)), Deciding::User);
        let mut consider = |room: i64, which: Deciding| {
            if room < best.0 {
                best = (room, which);
            }
        };
        let bits = product.map_or(0, product_bit) | model.map_or(0, model_bit);
        if e.caps & bits != 0
            && let Some(slot) = self.slots.get(e.id as usize)
        {
            // one pass over the lines; the product cap is considered before the model cap
            let (mut on_product, mut on_model) = (None, None);
            for line in slot.lines.iter().filter(|l| l.capped) {
                let room = line.cap.saturating_sub(line.spend());
                match line.kind {
                    Kind::Product if Some(line.key) == product => on_product = Some(room),
                    Kind::Model if Some(line.key) == model => on_model = Some(room),
                    _ => {}
                }
            }
            if let Some(room) = on_product {
                consider(room, Deciding::ProductCap);
            }
            if let Some(room) = on_model {
                consider(room, Deciding::ModelCap);
            }
        }
        if let Some(g) = self.groups.get(e.group as usize)
            && let Some(pool) = g.pool
        {
            consider(pool.saturating_sub(g.used.saturating_add(g.held)), Deciding::Pool);
        }
        if e.flags & RATED != 0
            && let Some(slot) = self.slots.get(e.id as usize)
        {
            // every open hold counts: it may be committed within the hour
            consider(slot.rate.saturating_sub(slot.recent.sum.saturating_add(e.held)), Deciding::RateCap);
        }
        Some(best)
    }

    /// Decides a spend and, when allowed, reserves it until `expires_at`.
    pub fn check(&mut self, req: &CheckRequest<'_>, now: i64, expires_at: i64) -> Decision {
        self.sweep(now, None);
        let Some(at) = self.users.find(req.user) else { return Decision::unlimited() };
        let (p, m) = (self.products.get(req.product), self.models.get(req.model));
        let rated = self.users.table.get(at).filter(|e| e.flags & RATED != 0).map(|e| e.id as usize);
        if let Some(slot) = rated.and_then(|id| self.slots.get_mut(id)) {
            slot.recent.prune(now);
        }
        let Some((room, deciding)) = self.room(at, p, m) else { return Decision::unlimited() };
        let fits = req.micros <= room;
        let too_many_holds = self.users.table.get(at).is_some_and(|e| e.open >= MAX_OPEN_HOLDS);
        if too_many_holds || (!fits && self.settings.enforcement != Enforcement::Soft) {
            let retry_after = match (deciding, rated.and_then(|id| self.slots.get(id))) {
                (Deciding::RateCap, Some(slot)) if !too_many_holds => {
                    slot.recent.frees(req.micros.saturating_sub(room), now)
                }
                _ => None,
            };
            return Decision {
                allowed: false,
                reservation: None,
                remaining: room.max(0),
                deciding,
                over_limit: false,
                no_limit: false,
                too_many_holds,
                expires_at: 0,
                retry_after,
            };
        }
        let expires_at = self.pool_share_expiry(at, req.micros, now, expires_at);
        let p = p.unwrap_or_else(|| self.products.intern(req.product));
        let m = m.unwrap_or_else(|| self.models.intern(req.model));
        self.hold_on(at, p, m, req.micros);
        self.count_open(at, 1);
        let user = self.users.table.get(at).map_or(0, |e| e.id);
        let seq = self.next_seq;
        self.next_seq += 1;
        let tag = (self.rng.next() >> 32) as u32;
        let wheel = self.place(seq, expires_at);
        let hold = Hold {
            user,
            at: at as u32,
            product: p,
            model: m,
            micros: req.micros,
            expires_at,
            tag,
            committing: false,
            persisted: false,
            wheel,
            foreign: None,
        };
        self.holds.insert(seq, hold);
        self.outbox.put.push(seq);
        Decision {
            allowed: true,
            reservation: Some(ReservationId { epoch: self.epoch, seq, tag }),
            remaining: room.saturating_sub(req.micros),
            deciding,
            over_limit: !fits,
            no_limit: false,
            too_many_holds: false,
            expires_at,
            retry_after: None,
        }
    }

    /// The expiry of a new hold: `asked`, or at most [`POOL_SHARE_TTL`] from `now` when
    /// the hold is more than [`POOL_SHARE_PERCENT`] of the user's pool.
    fn pool_share_expiry(&self, at: usize, micros: i64, now: i64, asked: i64) -> i64 {
        let pool =
            self.users.table.get(at).and_then(|e| self.groups.get(e.group as usize)).and_then(|g| g.pool);
        match pool {
            Some(pool) if i128::from(micros) * 100 > i128::from(pool) * i128::from(POOL_SHARE_PERCENT) => {
                asked.min(now.saturating_add(POOL_SHARE_TTL))
            }
            _ => asked,
        }
    }

    /// Adds `delta` to a user's count of open holds.
    fn count_open(&mut self, at: usize, delta: i16) {
        if let Some(e) = self.users.table.get_mut(at) {
            e.open = e.open.saturating_add_signed(delta);
        }
    }

    /// Puts a hold in the wheel bucket of its expiry (or the overdue list when that second is past).
    fn schedule(&mut self, seq: u64, expires_at: i64) {
        let pos = self.place(seq, expires_at);
        if let Some(h) = self.holds.get_mut(&seq) {
            h.wheel = pos;
        }
    }

    /// Adds a key to the wheel and returns its position there (for the hold's `wheel` field).
    fn place(&mut self, seq: u64, expires_at: i64) -> u32 {
        if expires_at <= self.wheel.swept {
            self.wheel.overdue.push(seq);
            OVERDUE
        } else {
            let bucket = &mut self.wheel.buckets[bucket_of(expires_at)];
            bucket.push(seq);
            u32::try_from(bucket.len() - 1).unwrap_or(NONE)
        }
    }

    /// Takes a hold out of its wheel bucket (swap-remove, fixing the moved entry's index).
    fn unschedule(&mut self, expires_at: i64, pos: u32) {
        if pos == NONE || pos == OVERDUE {
            // an overdue entry is dropped when the list is next looked at
            return;
        }
        let bucket = &mut self.wheel.buckets[bucket_of(expires_at)];
        let i = pos as usize;
        if i >= bucket.len() {
            return;
        }
        bucket.swap_remove(i);
        if let Some(&moved) = bucket.get(i)
            && let Some(h) = self.holds.get_mut(&moved)
        {
            h.wheel = pos;
        }
    }

    /// Drops reservations that lapsed at `now`; returns their ids.
    pub fn expire(&mut self, now: i64) -> Vec<String> {
        let mut gone = Vec::new();
        self.sweep(now, Some(&mut gone));
        gone
    }

    /// Expires every hold that lapsed at `now`: the buckets of the seconds since the last sweep.
    fn sweep(&mut self, now: i64, mut gone: Option<&mut Vec<String>>) {
        if now <= self.wheel.swept && self.wheel.overdue.is_empty() {
            return;
        }
        for seq in std::mem::take(&mut self.wheel.overdue) {
            match self.holds.get_mut(&seq) {
                Some(h) if h.wheel == OVERDUE => {
                    h.wheel = NONE;
                    if h.expires_at <= now {
                        self.lapse(seq, gone.as_deref_mut());
                    } else {
                        let at = h.expires_at;
                        self.schedule(seq, at);
                    }
                }
                _ => {}
            }
        }
        if now <= self.wheel.swept {
            return;
        }
        let from = if now.saturating_sub(self.wheel.swept) >= WHEEL as i64 {
            now - WHEEL as i64 + 1
        } else {
            self.wheel.swept + 1
        };
        self.wheel.swept = now;
        for second in from..=now {
            let b = bucket_of(second);
            let mut i = 0;
            while i < self.wheel.buckets[b].len() {
                let seq = self.wheel.buckets[b][i];
                let due = self.holds.get(&seq).is_none_or(|h| h.expires_at <= now);
                if !due {
                    // a later lap of the wheel
                    i += 1;
                    continue;
                }
                self.wheel.buckets[b].swap_remove(i);
                if let Some(&moved) = self.wheel.buckets[b].get(i)
                    && let Some(h) = self.holds.get_mut(&moved)
                {
                    h.wheel = u32::try_from(i).unwrap_or(NONE);
                }
                if let Some(h) = self.holds.get_mut(&seq) {
                    h.wheel = NONE;
                    // a hold being committed cannot lapse; a failed commit puts it back in line
                    if !h.committing {
                        self.lapse(seq, gone.as_deref_mut());
                    }
                }
            }
        }
    }

    /// Removes a lapsed hold (already out of the wheel) and gives its credits back.
    ///
    /// Its stored row stays for [`LATE_COMMIT_GRACE`]: a commit that arrives after the
    /// hold lapsed still records what was spent (the store's sweep drops it after).
    fn lapse(&mut self, seq: u64, gone: Option<&mut Vec<String>>) {
        let Some(h) = self.holds.remove(&seq) else { return };
        self.hold_on(h.at as usize, h.product, h.model, -h.micros);
        self.count_open(h.at as usize, -1);
        if let Some(f) = &h.foreign {
            self.foreign.remove(f);
        }
        if let Some(gone) = gone {
            gone.push(self.id_text(seq, &h));
        }
    }

    fn id_text(&self, seq: u64, h: &Hold) -> String {
        match &h.foreign {
            Some(f) => f.to_string(),
            None => ReservationId { epoch: self.epoch, seq, tag: h.tag }.to_string(),
        }
    }

    /// The key of the open reservation with this id text.
    fn find(&self, id: &str) -> Option<u64> {
        if let Some(r) = ReservationId::parse(id)
            && r.epoch == self.epoch
        {
            return self
                .holds
                .get(&r.seq)
                .is_some_and(|h| h.tag == r.tag && h.foreign.is_none())
                .then_some(r.seq);
        }
        if self.foreign.is_empty() {
            return None;
        }
        self.foreign.get(id).copied()
    }

    /// The reservation as the API and the store see it.
    fn spelled(&self, seq: u64, h: &Hold) -> Reservation {
        let group = self.users.table.get(h.at as usize).map_or(NONE, |e| e.group);
        Reservation {
            id: self.id_text(seq, h),
            user: self.users.name(h.user).to_string(),
            product: self.products.name(h.product).to_string(),
            model: self.models.name(h.model).to_string(),
            micros: h.micros,
            group: (group != NONE).then(|| self.group_names.name(group).to_string()),
            expires_at: h.expires_at,
            committing: h.committing,
        }
    }

    /// Restores a reservation read back from the store at startup.
    pub fn restore(&mut self, r: Reservation) {
        if self.foreign.contains_key(r.id.as_str()) {
            return;
        }
        let (at, p, m) =
            (self.user_slot(&r.user), self.products.intern(&r.product), self.models.intern(&r.model));
        self.hold_on(at, p, m, r.micros);
        self.count_open(at, 1);
        let user = self.users.table.get(at).map_or(0, |e| e.id);
        let seq = self.next_seq;
        self.next_seq += 1;
        let id: Box<str> = r.id.into_boxed_str();
        self.foreign.insert(id.clone(), seq);
        let hold = Hold {
            user,
            at: at as u32,
            product: p,
            model: m,
            micros: r.micros,
            expires_at: r.expires_at,
            tag: 0,
            committing: false,
            persisted: true,
            wheel: NONE,
            foreign: Some(id),
        };
        self.holds.insert(seq, hold);
        self.schedule(seq, r.expires_at);
    }

    /// Starts committing `actual` micro-credits against a reservation.
    ///
    /// When `actual` exceeds the hold, the difference is held too, whether or not it
    /// fits: usage is a fact, so what was spent is always recorded, and the limit it
    /// passes stops the user's next check instead. The reservation is then frozen
    /// until [`Ledger::finish_commit`].
    pub fn begin_commit(
        &mut self,
        id: &str,
        owner: Option<&str>,
        actual: i64,
        now: i64,
    ) -> Result<Reservation, ReservationError> {
        let Some(seq) = self.find(id) else { return Err(ReservationError::Unknown) };
        let h = match self.holds.get(&seq) {
            None => return Err(ReservationError::Unknown),
            Some(h) if h.committing => return Err(ReservationError::Busy),
            Some(h) if h.expires_at <= now => {
                self.sweep(now, None);
                return Err(ReservationError::Unknown);
            }
            Some(h) if owner.is_some_and(|o| o != self.users.name(h.user)) => {
                return Err(ReservationError::NotYours);
            }
            Some(h) => h.clone(),
        };
        let original = self.spelled(seq, &h);
        if actual > h.micros {
            self.hold_on(h.at as usize, h.product, h.model, actual - h.micros);
        }
        if let Some(frozen) = self.holds.get_mut(&seq) {
            frozen.committing = true;
            frozen.micros = h.micros.max(actual);
        }
        Ok(original)
    }

    /// Ends a commit: on success the hold becomes usage (at `ts`); on failure the reservation reopens.
    pub fn finish_commit(&mut self, original: &Reservation, actual: i64, ts: DateTime<Utc>, ok: bool) {
        let Some(seq) = self.find(&original.id) else { return };
        let Some(frozen) = self.holds.get(&seq).cloned() else { return };
        if ok {
            self.holds.remove(&seq);
            if let Some(f) = &frozen.foreign {
                self.foreign.remove(f);
            }
            self.unschedule(frozen.expires_at, frozen.wheel);
            self.hold_on(frozen.at as usize, frozen.product, frozen.model, -frozen.micros);
            self.count_open(frozen.at as usize, -1);
            self.remember(frozen.at as usize, frozen.model, ts.timestamp(), actual);
            if self.period.is_some_and(|p| p.contains(ts)) {
                self.count(frozen.at as usize, frozen.product, frozen.model, actual);
                let g = self.users.table.get(frozen.at as usize).map_or(NONE, |e| e.group);
                if let Some(g) = self.groups.get_mut(g as usize) {
                    g.used = g.used.saturating_add(actual);
                }
            }
        } else {
            self.hold_on(
                frozen.at as usize,
                frozen.product,
                frozen.model,
                -(frozen.micros - original.micros),
            );
            if let Some(h) = self.holds.get_mut(&seq) {
                h.micros = original.micros;
                h.committing = false;
            }
            // expiry may have passed over it while it was frozen: put it back in line
            if frozen.wheel == NONE {
                self.schedule(seq, frozen.expires_at);
            }
            if !frozen.persisted {
                self.outbox.put.push(seq);
            }
        }
    }

    /// Releases an open reservation.
    pub fn release(&mut self, id: &str, owner: Option<&str>) -> Result<Reservation, ReservationError> {
        let Some(seq) = self.find(id) else { return Err(ReservationError::Unknown) };
        let r = self.holds.get(&seq).map(|h| self.spelled(seq, h)).ok_or(ReservationError::Unknown)?;
        self.release_seq(seq, None, owner)?;
        Ok(r)
    }

    /// Releases an open reservation by the id [`Ledger::check`] returned (no text involved).
    pub fn release_id(
        &mut self,
        id: ReservationId,
        owner: Option<&str>,
    ) -> Result<Released, ReservationError> {
        if id.epoch != self.epoch {
            return Err(ReservationError::Unknown);
        }
        self.release_seq(id.seq, Some(id.tag), owner)
    }

    /// Releases the hold with key `seq` (and, when given, this tag: an id made by this ledger).
    fn release_seq(
        &mut self,
        seq: u64,
        tag: Option<u32>,
        owner: Option<&str>,
    ) -> Result<Released, ReservationError> {
        match self.holds.get(&seq) {
            None => return Err(ReservationError::Unknown),
            Some(h) if tag.is_some_and(|t| t != h.tag || h.foreign.is_some()) => {
                return Err(ReservationError::Unknown);
            }
            Some(h) if h.committing => return Err(ReservationError::Busy),
            Some(h) if owner.is_some_and(|o| o != self.users.name(h.user)) => {
                return Err(ReservationError::NotYours);
            }
            Some(_) => {}
        }
        let Some(h) = self.holds.remove(&seq) else { return Err(ReservationError::Unknown) };
        self.unschedule(h.expires_at, h.wheel);
        self.hold_on(h.at as usize, h.product, h.model, -h.micros);
        self.count_open(h.at as usize, -1);
        if h.persisted {
            let id = self.id_text(seq, &h);
            self.outbox.delete.push(id);
        }
        if let Some(f) = &h.foreign {
            self.foreign.remove(f);
        }
        Ok(Released { micros: h.micros })
    }

    /// True when reservation rows wait to be written and no writer job has been queued for them yet.
    ///
    /// Marks the job queued: the caller must queue one that calls [`Ledger::take_outbox`].
    pub fn claim_flush(&mut self) -> bool {
        if self.outbox.queued || (self.outbox.put.is_empty() && self.outbox.delete.is_empty()) {
            return false;
        }
        self.outbox.queued = true;
        true
    }

    /// Drains the rows to write: open holds not yet stored (not those being committed,
    /// whose commit removes them anyway) and ids of stored holds that ended.
    pub fn take_outbox(&mut self, now: i64) -> Outbox {
        self.outbox.queued = false;
        let mut out =
            Outbox { put: Vec::new(), delete: std::mem::take(&mut self.outbox.delete), sweep_before: None };
        let mut put = std::mem::take(&mut self.outbox.put);
        for seq in put.drain(..) {
            let Some(h) = self.holds.get(&seq) else { continue };
            if h.persisted || h.committing {
                continue;
            }
            out.put.push(self.spelled(seq, h));
            if let Some(h) = self.holds.get_mut(&seq) {
                h.persisted = true;
            }
        }
        // keep the buffer: the next check pushes without allocating
        self.outbox.put = put;
        if self.outbox.last_store_sweep.is_none_or(|at| now - at >= STORE_SWEEP_EVERY) {
            self.outbox.last_store_sweep = Some(now);
            out.sweep_before = Some(now.saturating_sub(LATE_COMMIT_GRACE));
        }
        out
    }

    /// A user's applied limit.
    pub fn limit_of(&self, user: &str) -> Option<&UserLimit> {
        let e = self.users.table.get(self.users.find(user)?)?;
        self.slots.get(e.id as usize)?.limit.as_deref()
    }

    /// A user's usage this period, total and by product and model (micro-credits).
    pub fn usage_of(&self, user: &str) -> (i64, BTreeMap<String, i64>, BTreeMap<String, i64>) {
        match self.users.find(user).and_then(|at| self.users.table.get(at)) {
            Some(e) => self.usage_in(e.id),
            None => (0, BTreeMap::new(), BTreeMap::new()),
        }
    }

    fn usage_in(&self, id: u32) -> (i64, BTreeMap<String, i64>, BTreeMap<String, i64>) {
        let used = self.users.of(id).map_or(0, |e| e.used);
        let Some(slot) = self.slots.get(id as usize) else { return (used, BTreeMap::new(), BTreeMap::new()) };
        let spelled = |kind: Kind, names: &Names| {
            slot.lines
                .iter()
                .filter(|s| s.counted && s.kind == kind)
                .map(|s| (names.name(s.key).to_string(), s.used))
                .collect()
        };
        (used, spelled(Kind::Product, &self.products), spelled(Kind::Model, &self.models))
    }

    /// Every user with a limit or usage this period, for the console's views.
    ///
    /// A copy, so the caller can sort and page it without holding the ledger's
    /// lock; callers cache it rather than taking it per request.
    pub fn standings(&self) -> Vec<UserStanding> {
        let mut users: Vec<(&str, u32, &UserSlot)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.limit.is_some() || s.counted)
            .map(|(i, s)| (self.users.name(i as u32), i as u32, s))
            .collect();
        users.sort_unstable_by(|a, b| a.0.cmp(b.0));
        users
            .into_iter()
            .map(|(user, id, slot)| {
                let (used, products, models) = self.usage_in(id);
                UserStanding {
                    user: user.to_string(),
                    limit: slot.limit.as_deref().cloned(),
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
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let pool = g.pool?;
                Some((self.group_names.name(i as u32).to_string(), pool, g.used))
            })
            .collect();
        pools.sort_unstable();
        pools
    }

    /// Number of open reservations.
    pub fn open_reservations(&self) -> usize {
        self.holds.len()
    }

    /// Seconds of the loaded period before the last hour at `now` (the baseline's span).
    fn seconds_before_hour(&self, now: i64) -> i64 {
        self.period.map_or(0, |p| now.saturating_sub(RATE_WINDOW).saturating_sub(p.start.timestamp()))
    }

    /// People and models whose last hour at `now` is runaway ([`crate::runaway`]),
    /// largest last hour first. One pass over the users who spent in the last hour's
    /// windows and over the models: no event is read.
    pub fn runaways(&mut self, now: i64) -> (Vec<Runaway>, Vec<Runaway>) {
        let seconds = self.seconds_before_hour(now);
        let mut people = Vec::new();
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if slot.recent.spends.is_empty() {
                continue;
            }
            slot.recent.prune(now);
            let last_hour = slot.recent.sum;
            if last_hour < runaway::FLOOR_MICROS || slot.recent.spends.len() < runaway::MIN_SPENDS {
                continue;
            }
            let at = self.users.at.get(id).copied().unwrap_or(NONE) as usize;
            let used = self.users.table.get(at).map_or(0, |e| e.used);
            let before = used.saturating_sub(last_hour).max(0);
            if runaway::is_runaway(last_hour, before, seconds) {
                let name = self.users.name(id as u32).to_string();
                people.push(Runaway { name, last_hour, baseline: runaway::baseline(before, seconds) });
            }
        }
        let mut models = Vec::new();
        for (id, w) in self.model_recent.iter_mut().enumerate() {
            w.prune(now);
            if w.sum < runaway::FLOOR_MICROS {
                continue;
            }
            let before = self.model_used.get(id).copied().unwrap_or(0).saturating_sub(w.sum).max(0);
            if runaway::is_runaway(w.sum, before, seconds) {
                let name = self.models.name(id as u32).to_string();
                models.push(Runaway { name, last_hour: w.sum, baseline: runaway::baseline(before, seconds) });
            }
        }
        let order =
            |a: &Runaway, b: &Runaway| b.last_hour.cmp(&a.last_hour).then_with(|| a.name.cmp(&b.name));
        people.sort_by(order);
        models.sort_by(order);
        (people, models)
    }

    /// The user's runaway finding at `now`, when their last hour is runaway and no
    /// runaway alert was given for them in the hour before: an alert at most once per
    /// person per hour, however many events the burst has.
    pub fn runaway_alert(&mut self, user: &str, now: i64) -> Option<Runaway> {
        let seconds = self.seconds_before_hour(now);
        let at = self.users.find(user)?;
        let e = *self.users.table.get(at)?;
        let slot = self.slots.get_mut(e.id as usize)?;
        if slot.quiet_until > now {
            return None;
        }
        slot.recent.prune(now);
        let last_hour = slot.recent.sum;
        let before = e.used.saturating_sub(last_hour).max(0);
        if slot.recent.spends.len() < runaway::MIN_SPENDS || !runaway::is_runaway(last_hour, before, seconds)
        {
            return None;
        }
        slot.quiet_until = now.saturating_add(RATE_WINDOW);
        Some(Runaway { name: user.to_string(), last_hour, baseline: runaway::baseline(before, seconds) })
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

    /// The id text of an allowed check.
    fn id(d: &Decision) -> String {
        d.reservation.unwrap().to_string()
    }

    /// A ledger where `r@x.com` has 2000 credits a month and at most `per_hour` an hour.
    fn rated(per_hour: i64) -> Ledger {
        let mut l = Ledger::default();
        let settings = Settings::default();
        l.load_usage(settings.clone(), Ledger::period_for(&settings, now()), Vec::new());
        let limit = Limit {
            credits: Credits::from_whole(2000),
            per_hour: Some(Credits::from_whole(per_hour)),
            ..Default::default()
        };
        l.apply_limits([("r@x.com".to_string(), Some(UserLimit { limit, group: None }))], []);
        l
    }

    fn at(offset: i64) -> DateTime<Utc> {
        now() + chrono::Duration::seconds(offset)
    }

    #[test]
    fn the_rate_cap_counts_the_last_hour_by_event_time_and_frees_as_it_slides() {
        let mut l = rated(150);
        let t = now().timestamp();
        // 100 spent 50 minutes ago, 30 spent 10 minutes ago, 20 two hours ago (outside)
        l.add_usage("r@x.com", "codex", "m", 20_000_000, at(-7200));
        l.add_usage("r@x.com", "codex", "m", 100_000_000, at(-3000));
        l.add_usage("r@x.com", "codex", "m", 30_000_000, at(-600));
        let d = l.check(&req("r@x.com", "codex", 21), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::RateCap, 20_000_000));
        // the 100 leaves the window 600 s from now: then 21 fits
        assert_eq!(d.retry_after, Some(600));
        let d = l.check(&req("r@x.com", "codex", 20), t, t + 3600);
        assert_eq!((d.allowed, d.deciding, d.remaining), (true, Deciding::RateCap, 0));
        // the open hold counts too: nothing more fits now, and only its release or the window frees room
        let d = l.check(&req("r@x.com", "codex", 1), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.retry_after), (false, Deciding::RateCap, Some(600)));
        // one second before the 100 leaves, still refused; at that second, room for 100
        let d = l.check(&req("r@x.com", "codex", 1), t + 599, t + 659);
        assert!(!d.allowed);
        let d = l.check(&req("r@x.com", "codex", 100), t + 600, t + 660);
        assert_eq!((d.allowed, d.remaining), (true, 0));
        // more than the rate cap itself never fits: no retry time
        let d = l.check(&req("r@x.com", "codex", 151), t + 600, t + 660);
        assert_eq!((d.allowed, d.retry_after), (false, None));
    }

    #[test]
    fn a_commit_counts_at_its_time_and_a_period_limit_still_decides_when_tighter() {
        let mut l = rated(150);
        let t = now().timestamp();
        let d = l.check(&req("r@x.com", "codex", 100), t, t + 60);
        let r = l.begin_commit(&id(&d), None, 120_000_000, t).unwrap();
        l.finish_commit(&r, 120_000_000, now(), true);
        let d = l.check(&req("r@x.com", "codex", 31), t + 1, t + 60);
        assert_eq!(
            (d.allowed, d.deciding, d.remaining, d.retry_after),
            (false, Deciding::RateCap, 30_000_000, Some(3599))
        );
        // an hour later the commit left the window; the period's total then decides
        let usage = vec![("r@x.com".to_string(), "codex".to_string(), "m".to_string(), 1_950_000_000)];
        let settings = Settings::default();
        l.load_usage(settings.clone(), Ledger::period_for(&settings, now()), usage);
        let d = l.check(&req("r@x.com", "codex", 60), t + 3600, t + 3660);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::User, 50_000_000));
        // a limit without a rate cap removes it
        let limit = Limit { credits: Credits::from_whole(5000), ..Default::default() };
        l.apply_limits([("r@x.com".to_string(), Some(UserLimit { limit, group: None }))], []);
        let d = l.check(&req("r@x.com", "codex", 1000), t + 3600, t + 3660);
        assert_eq!((d.allowed, d.deciding), (true, Deciding::User));
    }

    #[test]
    fn concurrent_checks_pass_the_rate_cap_exactly_k_times() {
        // room for exactly 7 checks of 20 in a cap of 150 after 10 spent
        let ledger = std::sync::Arc::new(std::sync::Mutex::new(rated(150)));
        let t = now().timestamp();
        ledger.lock().unwrap().add_usage("r@x.com", "codex", "m", 10_000_000, at(-60));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    (0..4)
                        .filter(|_| {
                            ledger.lock().unwrap().check(&req("r@x.com", "codex", 20), t, t + 60).allowed
                        })
                        .count()
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(granted, 7);
        let d = ledger.lock().unwrap().check(&req("r@x.com", "codex", 1), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::RateCap, 0));
    }

    #[test]
    fn a_steady_person_is_not_runaway_and_a_burst_is_flagged_and_alerted_once_an_hour() {
        let mut l = Ledger::default();
        let settings = Settings::default();
        let period = Ledger::period_for(&settings, now());
        // two weeks into the month at 10 credits an hour: 3360 credits before the last hour
        let steady = 14 * 24 * 10 * 1_000_000;
        let hours_in = (now().timestamp() - period.start.timestamp()) / 3600;
        assert_eq!(hours_in, 14 * 24 + 12);
        l.load_usage(
            settings,
            period,
            vec![
                ("steady@x.com".into(), "codex".into(), "m".into(), steady),
                ("burst@x.com".into(), "codex".into(), "loop".into(), steady),
            ],
        );
        let t = now().timestamp();
        for minute in 0..60 {
            // the steady person keeps to their 10 an hour; the burst spends 8 a minute (480)
            if minute % 6 == 0 {
                l.add_usage("steady@x.com", "codex", "m", 1_000_000, at(-3540 + minute * 60));
            }
            l.add_usage("burst@x.com", "codex", "loop", 8_000_000, at(-3540 + minute * 60));
        }
        let (people, models) = l.runaways(t);
        let names: Vec<&str> = people.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["burst@x.com"]);
        assert_eq!(people[0].last_hour, 480_000_000);
        // the model of the loop too; `m` stays steady
        assert_eq!(models.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["loop"]);
        assert!(l.runaway_alert("steady@x.com", t).is_none());
        assert!(l.runaway_alert("burst@x.com", t).is_some());
        assert!(l.runaway_alert("burst@x.com", t + 1800).is_none(), "once an hour, not per event");
        for k in 0..3 {
            l.add_usage("burst@x.com", "codex", "loop", 100_000_000, at(3600 - 10 * k));
        }
        assert!(l.runaway_alert("burst@x.com", t + 3600).is_some(), "the next hour alerts again");
        // an hour and more after the burst stopped, nobody is runaway
        let (people, _) = l.runaways(t + 3 * 3600);
        assert!(people.is_empty(), "{people:?}");
        // one large spend alone, however large, is not a loop
        l.add_usage("once@x.com", "codex", "m", 500_000_000, at(3 * 3600));
        let (people, _) = l.runaways(t + 3 * 3600);
        assert!(people.is_empty(), "{people:?}");
        l.add_usage("once@x.com", "codex", "m", 1_000_000, at(3 * 3600 - 10));
        l.add_usage("once@x.com", "codex", "m", 1_000_000, at(3 * 3600 - 20));
        let (people, _) = l.runaways(t + 3 * 3600);
        assert_eq!(people.len(), 1, "{people:?}");
    }

    #[test]
    fn short_and_long_names_intern_apart_and_back() {
        let mut n = Names::default();
        let long = "a.very.long.first.name.and.surname@example.com";
        let names = ["a@x.com", "", "a@x.co", "a@x.com\0", long, &long[..31], &long[..32]];
        let ids: Vec<u32> = names.iter().map(|x| n.intern(x)).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6]);
        for (x, id) in names.iter().zip(&ids) {
            assert_eq!((n.get(x), n.intern(x), n.name(*id)), (Some(*id), *id, *x));
        }
        assert_eq!((n.short.len(), n.long.len()), (5, 2));
        assert_eq!(n.get("a@x.c"), None);
    }

    #[test]
    fn the_smallest_room_decides() {
        let mut l = ledger();
        let t = now().timestamp();
        let d = l.check(&req("a@x.com", "codex", 6), t, t + 60);
        assert!(!d.allowed);
        assert_eq!((d.deciding, d.remaining), (Deciding::ProductCap, 5_000_000));
        let d = l.check(&req("a@x.com", "chatgpt", 6), t, t + 60);
        assert!(d.allowed);
        assert_eq!((d.deciding, d.remaining), (Deciding::User, 4_000_000));
        // the pool has 120 - 90 - 6 = 24 left; b's own total has 100
        let d = l.check(&req("b@x.com", "chatgpt", 25), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::Pool, 24_000_000));
    }

    #[test]
    fn a_model_cap_decides_when_it_is_the_tightest() {
        let mut l = ledger();
        let mut limit = Limit { credits: Credits::from_whole(100), ..Default::default() };
        limit.models.insert("big".into(), Credits::from_whole(3));
        l.apply_limits([("c@x.com".to_string(), Some(UserLimit { limit, group: None }))], []);
        let t = now().timestamp();
        let ask = CheckRequest { user: "c@x.com", product: "chatgpt", model: "big", micros: 2_000_000 };
        assert!(l.check(&ask, t, t + 60).allowed);
        let d = l.check(&ask, t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::ModelCap, 1_000_000));
        let other = CheckRequest { model: "small", ..ask };
        assert!(l.check(&other, t, t + 60).allowed);
    }

    #[test]
    fn holds_count_until_released_or_expired() {
        let mut l = ledger();
        let t = now().timestamp();
        let r1 = l.check(&req("b@x.com", "chatgpt", 20), t, t + 60);
        assert!(r1.allowed);
        assert!(!l.check(&req("b@x.com", "chatgpt", 20), t, t + 60).allowed);
        assert_eq!(l.release(&id(&r1), Some("b@x.com")).map(|r| r.micros), Ok(20_000_000));
        let r3 = l.check(&req("b@x.com", "chatgpt", 20), t, t + 60);
        assert!(r3.allowed);
        // r3 lapses at t + 60: the room comes back
        assert!(!l.check(&req("b@x.com", "chatgpt", 20), t + 59, t + 120).allowed);
        assert!(l.check(&req("b@x.com", "chatgpt", 20), t + 60, t + 120).allowed);
        assert_eq!(l.release(&id(&r3), None), Err(ReservationError::Unknown));
        assert_eq!(l.release_id(r3.reservation.unwrap(), None), Err(ReservationError::Unknown));
    }

    #[test]
    fn ids_are_checked_whole_and_never_repeat_across_ledgers() {
        let (mut a, mut b) = (ledger(), ledger());
        let t = now().timestamp();
        let ra = a.check(&req("b@x.com", "chatgpt", 1), t, t + 60);
        let rb = b.check(&req("b@x.com", "chatgpt", 1), t, t + 60);
        assert_ne!(id(&ra), id(&rb));
        assert_eq!(ReservationId::parse(&id(&ra)), ra.reservation);
        // another ledger's id, a wrong tag, garbage: unknown, and the hold stays
        assert_eq!(a.release(&id(&rb), None), Err(ReservationError::Unknown));
        let mut forged = ra.reservation.unwrap();
        forged.tag ^= 1;
        assert_eq!(a.release(&forged.to_string(), None), Err(ReservationError::Unknown));
        assert_eq!(a.release("rsv_zz", None), Err(ReservationError::Unknown));
        assert_eq!(a.release(&id(&ra), Some("a@x.com")), Err(ReservationError::NotYours));
        assert_eq!(a.open_reservations(), 1);
        assert!(a.release_id(ra.reservation.unwrap(), Some("b@x.com")).is_ok());
        assert_eq!(a.open_reservations(), 0);
    }

    #[test]
    fn commit_turns_the_hold_into_usage() {
        let mut l = ledger();
        let t = now().timestamp();
        let r1 = id(&l.check(&req("a@x.com", "chatgpt", 10), t, t + 60));
        assert_eq!(l.begin_commit(&r1, Some("b@x.com"), 1, t), Err(ReservationError::NotYours));
        let r = l.begin_commit(&r1, Some("a@x.com"), 4_000_000, t).unwrap();
        assert_eq!(
            (r.id.as_str(), r.user.as_str(), r.group.as_deref()),
            (r1.as_str(), "a@x.com", Some("eng"))
        );
        assert_eq!(l.release(&r1, None), Err(ReservationError::Busy));
        l.finish_commit(&r, 4_000_000, now(), true);
        let (used, products, _) = l.usage_of("a@x.com");
        assert_eq!((used, products.get("chatgpt")), (94_000_000, Some(&4_000_000)));
        assert_eq!(l.open_reservations(), 0);
        assert_eq!(l.pool_standings(), vec![("eng".to_string(), 120_000_000, 94_000_000)]);
        // 6 left: a failed commit of more than reserved gives the difference back
        let r2 = id(&l.check(&req("a@x.com", "chatgpt", 5), t, t + 60));
        let r = l.begin_commit(&r2, None, 6_000_000, t).unwrap();
        l.finish_commit(&r, 6_000_000, now(), false);
        assert!(l.release(&r2, None).is_ok());
        assert_eq!(l.check(&req("a@x.com", "chatgpt", 6), t, t + 60).remaining, 0);
    }

    #[test]
    fn a_commit_past_the_limit_is_recorded_and_the_next_check_is_denied() {
        let mut l = ledger();
        let t = now().timestamp();
        // a has 10 left of 100; a hold of 5, then 12 actually spent: 7 past the limit
        let r1 = id(&l.check(&req("a@x.com", "chatgpt", 5), t, t + 60));
        let r = l.begin_commit(&r1, None, 12_000_000, t).unwrap();
        assert_eq!(r.micros, 5_000_000, "the answer names what was reserved");
        l.finish_commit(&r, 12_000_000, now(), true);
        assert_eq!(l.usage_of("a@x.com").0, 102_000_000);
        assert_eq!(l.pool_standings(), vec![("eng".to_string(), 120_000_000, 102_000_000)]);
        let d = l.check(&req("a@x.com", "chatgpt", 1), t, t + 60);
        assert_eq!((d.allowed, d.remaining, d.deciding), (false, 0, Deciding::User));
        // nothing is held any more
        assert_eq!(l.open_reservations(), 0);
        assert_eq!(l.users.of(0).map(|e| (e.held, e.open)), Some((0, 0)));
    }

    #[test]
    fn open_holds_per_user_are_bounded_and_counted_back() {
        let mut l = ledger();
        let t = now().timestamp();
        let limit = Limit { credits: Credits::from_whole(1_000_000), ..Default::default() };
        l.apply_limits([("c@x.com".to_string(), Some(UserLimit { limit, group: None }))], []);
        let mut ids = Vec::new();
        for _ in 0..MAX_OPEN_HOLDS {
            let d = l.check(&req("c@x.com", "chatgpt", 1), t, t + 60);
            ids.push(d.reservation.unwrap());
        }
        let d = l.check(&req("c@x.com", "chatgpt", 1), t, t + 60);
        assert!(!d.allowed && d.too_many_holds && d.reservation.is_none());
        // another user is not affected
        assert!(l.check(&req("b@x.com", "chatgpt", 1), t, t + 60).allowed);
        // a release, a commit and an expiry each make room again
        assert!(l.release_id(ids[0], None).is_ok());
        let c = l.check(&req("c@x.com", "chatgpt", 1), t, t + 1);
        assert!(c.allowed);
        let r = l.begin_commit(&ids[1].to_string(), None, 1, t).unwrap();
        l.finish_commit(&r, 1, now(), true);
        assert!(l.check(&req("c@x.com", "chatgpt", 1), t, t + 60).allowed);
        assert!(!l.check(&req("c@x.com", "chatgpt", 1), t, t + 60).allowed);
        assert_eq!(l.expire(t + 1).len(), 1);
        assert!(l.check(&req("c@x.com", "chatgpt", 1), t + 1, t + 60).allowed);
    }

    #[test]
    fn a_hold_of_most_of_a_pool_lives_only_briefly() {
        let mut l = ledger();
        let t = now().timestamp();
        let limit = Limit { credits: Credits::from_whole(1000), ..Default::default() };
        l.apply_limits(
            [("c@x.com".to_string(), Some(UserLimit { limit, group: Some("ops".into()) }))],
            [("ops".to_string(), Some(400_000_000))],
        );
        // the pool is 400 credits: 100 is exactly a quarter, 100.000001 more
        let d = l.check(&req("c@x.com", "chatgpt", 100), t, t + 3600);
        assert_eq!((d.allowed, d.expires_at), (true, t + 3600));
        let big = CheckRequest { micros: 100_000_001, ..req("c@x.com", "chatgpt", 0) };
        let d = l.check(&big, t, t + 3600);
        assert_eq!((d.allowed, d.expires_at), (true, t + POOL_SHARE_TTL));
        // a shorter ask is kept
        let d = l.check(&big, t, t + 10);
        assert_eq!(d.expires_at, t + 10);
        // the short hold lapses on time and gives the pool back
        assert_eq!(l.expire(t + POOL_SHARE_TTL).len(), 2);
    }

    #[test]
    fn a_failed_commit_reopens_a_reservation_that_still_expires() {
        let mut l = ledger();
        let t = now().timestamp();
        let r1 = id(&l.check(&req("b@x.com", "chatgpt", 30), t, t + 60));
        let r = l.begin_commit(&r1, None, 30_000_000, t).unwrap();
        // its expiry passes while the commit is being written: it is not dropped then
        assert!(l.expire(t + 61).is_empty());
        l.finish_commit(&r, 30_000_000, now(), false);
        assert_eq!(l.expire(t + 61), vec![r1]);
        assert_eq!(l.usage_of("b@x.com").0, 0);
        assert!(l.check(&req("b@x.com", "chatgpt", 30), t + 61, t + 120).allowed);
    }

    #[test]
    fn the_wheel_expires_each_hold_in_its_second_whatever_was_released_around_it() {
        let mut l = ledger();
        let t = now().timestamp();
        let mut ids = Vec::new();
        for k in 0..40 {
            // four holds per second for ten seconds, and one that lives past a full turn of the wheel
            let ask = CheckRequest { user: "b@x.com", product: "chatgpt", model: "m", micros: 1 };
            ids.push(l.check(&ask, t, t + 10 + k / 4).reservation.unwrap());
        }
        let far = l.check(&req("b@x.com", "chatgpt", 1), t, t + WHEEL as i64 + 5).reservation.unwrap();
        for gone in [0, 5, 6, 39, 21] {
            assert!(l.release_id(ids[gone], None).is_ok());
        }
        let mut expired = 0;
        for s in 0..=10 {
            let now = t + 10 + s;
            let lapsed = l.expire(now);
            let want: Vec<String> = (0..40)
                .filter(|k| t + 10 + k / 4 == now && ![0, 5, 6, 39, 21].contains(k))
                .map(|k| ids[k as usize].to_string())
                .collect();
            let mut got = lapsed.clone();
            got.sort();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            assert_eq!(got, want_sorted, "second {s}");
            expired += lapsed.len();
        }
        assert_eq!(expired, 35);
        assert_eq!(l.open_reservations(), 1);
        assert!(l.expire(t + WHEEL as i64 + 4).is_empty());
        assert_eq!(l.expire(t + WHEEL as i64 + 5), vec![far.to_string()]);
        assert_eq!((l.users.of(1).unwrap().held, l.groups[0].held), (0, 0));
    }

    #[test]
    fn the_outbox_stores_open_holds_once_and_deletes_only_stored_ones() {
        let mut l = ledger();
        let t = now().timestamp();
        let quick = l.check(&req("b@x.com", "chatgpt", 1), t, t + 60).reservation.unwrap();
        let kept = l.check(&req("b@x.com", "chatgpt", 2), t, t + 60).reservation.unwrap();
        assert!(l.claim_flush());
        assert!(!l.claim_flush(), "one writer job at a time");
        // released before the writer ran: never written, nothing to delete
        assert!(l.release_id(quick, None).is_ok());
        let out = l.take_outbox(t);
        assert_eq!(out.put.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![kept.to_string()]);
        assert_eq!((out.put[0].micros, out.put[0].group.as_deref()), (2_000_000, Some("eng")));
        assert!(out.delete.is_empty());
        assert_eq!(out.sweep_before, Some(t - LATE_COMMIT_GRACE));
        assert!(!l.claim_flush());
        // a stored hold that ends is deleted
        assert!(l.release_id(kept, None).is_ok());
        assert!(l.claim_flush());
        let out = l.take_outbox(t + 1);
        assert_eq!((out.put.len(), out.delete.clone(), out.sweep_before), (0, vec![kept.to_string()], None));
        // a hold being committed is not written: its commit removes it
        let c = id(&l.check(&req("b@x.com", "chatgpt", 3), t, t + 60));
        let r = l.begin_commit(&c, None, 3_000_000, t).unwrap();
        assert!(l.take_outbox(t).put.is_empty());
        // unless the commit fails and it reopens
        l.finish_commit(&r, 3_000_000, now(), false);
        assert_eq!(l.take_outbox(t).put.len(), 1);
        // a lapsed hold's row stays: a late commit on it is still recorded
        assert_eq!(l.expire(t + 60), vec![c]);
        assert!(l.take_outbox(t).delete.is_empty());
        // and the store's sweep drops such rows a grace period after they lapsed
        let later = t + 1000;
        assert_eq!(l.take_outbox(later).sweep_before, Some(later - LATE_COMMIT_GRACE));
    }

    #[test]
    fn restored_reservations_keep_their_ids_and_holds() {
        let mut l = ledger();
        let t = now().timestamp();
        let old = Reservation {
            id: "rsv_0123456789abcdef01234567".into(),
            user: "b@x.com".into(),
            product: "chatgpt".into(),
            model: "m".into(),
            micros: 100_000_000,
            group: None,
            expires_at: t + 30,
            committing: false,
        };
        l.restore(old.clone());
        let d = l.check(&req("b@x.com", "chatgpt", 1), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::Pool, 0));
        let r = l.begin_commit(&old.id, Some("b@x.com"), 50_000_000, t).unwrap();
        assert_eq!((r.id.as_str(), r.group.as_deref()), (old.id.as_str(), Some("eng")));
        l.finish_commit(&r, 50_000_000, now(), true);
        assert_eq!(l.usage_of("b@x.com").0, 50_000_000);
        assert_eq!(l.release(&old.id, None), Err(ReservationError::Unknown));
        l.restore(Reservation { id: "rsv_old2".into(), ..old });
        assert_eq!(l.take_outbox(t).put.len(), 0, "restored rows are already stored");
        assert_eq!(l.expire(t + 30), vec!["rsv_old2".to_string()]);
        assert!(l.take_outbox(t).delete.is_empty(), "kept for a late commit");
    }

    #[test]
    fn standings_list_users_with_a_limit_or_usage() {
        let mut l = ledger();
        let t = now().timestamp();
        // a hold alone does not make a standing
        l.restore(Reservation {
            id: "rsv_x".into(),
            user: "held@x.com".into(),
            product: "p".into(),
            model: "m".into(),
            micros: 1,
            group: None,
            expires_at: t + 30,
            committing: false,
        });
        l.add_usage("z@x.com", "codex", "m", 5, now());
        let s = l.standings();
        let users: Vec<&str> = s.iter().map(|s| s.user.as_str()).collect();
        assert_eq!(users, ["a@x.com", "b@x.com", "z@x.com"]);
        assert_eq!((s[0].used, s[0].products.clone()), (90_000_000, vec![("codex".to_string(), 90_000_000)]));
        assert!(s[2].limit.is_none());
        assert_eq!(l.limit_of("a@x.com").map(|l| l.group.as_deref()), Some(Some("eng")));
        // removing a limit and a pool
        l.apply_limits([("a@x.com".to_string(), None)], [("eng".to_string(), None)]);
        assert!(l.limit_of("a@x.com").is_none());
        assert!(l.pool_standings().is_empty());
    }

    #[test]
    fn concurrent_style_interleavings_never_overspend_and_sums_stay_exact() {
        // a deterministic random walk of checks, commits (ok and failed), releases and time passing
        let mut l = ledger();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let users = ["a@x.com", "b@x.com"];
        let mut t = now().timestamp();
        let mut open: Vec<(ReservationId, i64)> = Vec::new();
        for _ in 0..20_000 {
            match rng.next() % 6 {
                0 | 1 => {
                    let user = users[(rng.next() % 2) as usize];
                    let product = if rng.next().is_multiple_of(2) { "codex" } else { "chatgpt" };
                    let ask = CheckRequest {
                        user,
                        product,
                        model: "m",
                        micros: (rng.next() % 3_000_000) as i64 + 1,
                    };
                    let ttl = (rng.next() % 5) as i64 + 1;
                    if let Some(r) = l.check(&ask, t, t + ttl).reservation {
                        open.push((r, ask.micros));
                    }
                }
                2 if !open.is_empty() => {
                    let (r, _) = open.swap_remove((rng.next() % open.len() as u64) as usize);
                    let _ = l.release_id(r, None);
                }
                3 if !open.is_empty() => {
                    let (r, held) = open.swap_remove((rng.next() % open.len() as u64) as usize);
                    // at most the hold: a commit past it is recorded whatever the limits
                    // say (a_commit_past_the_limit_is_recorded…), which is not this walk's point
                    let actual = ((rng.next() % 2_000_000) as i64).min(held);
                    if let Ok(orig) = l.begin_commit(&r.to_string(), None, actual, t) {
                        let ok = !rng.next().is_multiple_of(4);
                        l.finish_commit(&orig, actual, now(), ok);
                        if !ok {
                            open.push((r, held));
                        }
                    }
                }
                4 => t += (rng.next() % 2) as i64,
                _ => {
                    let _ = l.take_outbox(t);
                }
            }
            // sums of holds match the open holds, and no limit is past 100%
            let mut held = [0i64; 2];
            for h in l.holds.values() {
                held[h.user as usize] += h.micros;
            }
            for (u, slot) in l.slots.iter().enumerate() {
                let e = l.users.of(u as u32).unwrap();
                assert_eq!(e.held, held[u]);
                assert!(e.used + e.held <= 100_000_000);
                let codex =
                    slot.lines.get(Kind::Product, l.products.get("codex").unwrap()).map_or(0, Line::spend);
                assert!(codex <= 95_000_000);
            }
            let g = l.groups[0];
            assert_eq!(g.held, held[0] + held[1]);
            assert!(g.used + g.held <= 120_000_000);
        }
        assert!(l.usage_of("b@x.com").0 > 0);
    }

    #[test]
    fn lines_past_the_inline_ones_keep_exact_sums_and_caps() {
        // six products and three models per user: lines spill from the slot to the heap;
        // limits are re-applied mid-walk (caps cleared and set again, and every third time
        // two more lines capped while holds are open on them)
        let mut l = ledger();
        let products = ["codex", "chatgpt", "api", "sora", "p5", "p6"];
        let models = ["m", "big", "small"];
        let limits_with = |more: bool| {
            let mut limit = Limit { credits: Credits::from_whole(1000), ..Default::default() };
            limit.products.insert("p6".into(), Credits::from_whole(7));
            limit.products.insert("codex".into(), Credits::from_whole(95));
            limit.models.insert("big".into(), Credits::from_whole(11));
            if more {
                limit.products.insert("sora".into(), Credits::from_whole(900));
                limit.models.insert("small".into(), Credits::from_whole(900));
            }
            ["a@x.com", "b@x.com"]
                .map(|u| (u.to_string(), Some(UserLimit { limit: limit.clone(), group: Some("eng".into()) })))
        };
        let limits = || limits_with(false);
        const POOL: i64 = 1_500_000_000;
        l.apply_limits(limits(), [("eng".to_string(), Some(POOL))]);
        let mut rng = Rng(0x0ddc_0ffe_e15e_a5e5);
        let mut t = now().timestamp();
        let mut open: Vec<(ReservationId, i64)> = Vec::new();
        // checks refused by a product cap and by a model cap
        let mut stopped_by = (0, 0);
        for step in 0..20_000 {
            match rng.next() % 7 {
                0..=2 => {
                    let ask = CheckRequest {
                        user: ["a@x.com", "b@x.com"][(rng.next() % 2) as usize],
                        product: products[(rng.next() % 6) as usize],
                        model: models[(rng.next() % 3) as usize],
                        micros: (rng.next() % 2_000_000) as i64 + 1,
                    };
                    let d = l.check(&ask, t, t + (rng.next() % 5) as i64 + 1);
                    match (d.reservation, d.deciding) {
                        (Some(r), _) => open.push((r, ask.micros)),
                        (None, Deciding::ProductCap) => stopped_by.0 += 1,
                        (None, Deciding::ModelCap) => stopped_by.1 += 1,
                        (None, _) => {}
                    }
                }
                3 if !open.is_empty() => {
                    let (r, _) = open.swap_remove((rng.next() % open.len() as u64) as usize);
                    let _ = l.release_id(r, None);
                }
                4 if !open.is_empty() => {
                    let (r, held) = open.swap_remove((rng.next() % open.len() as u64) as usize);
                    let actual = ((rng.next() % 2_000_000) as i64).min(held);
                    if let Ok(orig) = l.begin_commit(&r.to_string(), None, actual, t) {
                        let ok = !rng.next().is_multiple_of(4);
                        l.finish_commit(&orig, actual, now(), ok);
                        if !ok {
                            open.push((r, held));
                        }
                    }
                }
                5 => t += (rng.next() % 2) as i64,
                _ if step % 500 == 0 => {
                    l.apply_limits(limits_with(step / 500 % 3 == 1), [("eng".to_string(), Some(POOL))]);
                }
                _ => {
                    let _ = l.take_outbox(t);
                }
            }
            // every capped line's holds are exactly the open holds on it (others keep none)
            let mut want: BTreeMap<(u32, u8, u32), i64> = BTreeMap::new();
            for h in l.holds.values() {
                *want.entry((h.user, 0, h.product)).or_default() += h.micros;
                *want.entry((h.user, 1, h.model)).or_default() += h.micros;
            }
            for (u, slot) in l.slots.iter().enumerate() {
                assert!(slot.lines.iter().count() <= products.len() + models.len());
                for line in slot.lines.iter() {
                    let kind = u8::from(line.kind == Kind::Model);
                    let open =
                        if line.capped { want.get(&(u as u32, kind, line.key)).copied() } else { None };
                    assert_eq!(line.held, open.unwrap_or(0));
                    if line.capped {
                        assert!(line.spend() <= line.cap, "a cap past 100%");
                    }
                }
                let e = l.users.of(u as u32).unwrap();
                assert!(e.used + e.held <= 1_000_000_000);
            }
            let g = l.groups[0];
            assert!(g.used + g.held <= POOL);
        }
        // the caps were reached, so the walk tested them
        assert!(stopped_by.0 > 0 && stopped_by.1 > 0, "{stopped_by:?}");
        let p6 = l.products.get("p6").unwrap();
        let big = l.models.get("big").unwrap();
        for slot in &l.slots {
            assert!(slot.lines.iter().count() > INLINE_LINES);
            assert!(slot.lines.get(Kind::Product, p6).is_some_and(|x| x.capped && x.spend() > 0));
            assert!(slot.lines.get(Kind::Model, big).is_some_and(|x| x.capped && x.spend() > 0));
        }
    }

    #[test]
    fn the_user_table_grows_under_open_holds_and_finds_every_name() {
        let mut l = ledger();
        let t = now().timestamp();
        let long = "a.rather.long.first.name.and.surname@example.com";
        let limit = Limit { credits: Credits::from_whole(100), ..Default::default() };
        l.apply_limits([(long.to_string(), Some(UserLimit { limit: limit.clone(), group: None }))], []);
        let held = l.check(&req("b@x.com", "chatgpt", 7), t, t + 60).reservation.unwrap();
        let held_long = l.check(&req(long, "chatgpt", 3), t, t + 60).reservation.unwrap();
        // thousands of users added: the table grows several times and entries move
        let many: Vec<(String, Option<UserLimit>)> = (0..5000)
            .map(|i| (format!("u{i}@x.com"), Some(UserLimit { limit: limit.clone(), group: None })))
            .collect();
        l.apply_limits(many, []);
        assert!(l.users.table.len() >= 2 * l.users.len);
        for (id, name) in l.users.names.iter().enumerate() {
            let at = l.users.find(name).unwrap();
            assert_eq!((l.users.table[at].id, l.users.at[id]), (id as u32, at as u32));
        }
        assert_eq!(l.users.find("u5000@x.com"), None);
        // the holds still count against (and give back to) the right users
        // b's pool has 120 - 90 - 7 = 23 left
        let d = l.check(&req("b@x.com", "chatgpt", 23), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (true, Deciding::Pool, 0));
        assert!(l.release_id(held, None).is_ok());
        assert!(l.release_id(held_long, None).is_ok());
        let e = l.users.of(1).unwrap();
        assert_eq!((e.held, l.users.find(long).map(|at| l.users.table[at].held)), (23_000_000, Some(0)));
        assert_eq!(l.check(&req(long, "chatgpt", 100), t, t + 60).remaining, 0);
        assert!(l.check(&req("u4999@x.com", "chatgpt", 100), t, t + 60).allowed);
    }

    #[test]
    fn a_cap_set_under_open_holds_counts_them() {
        let mut l = ledger();
        let t = now().timestamp();
        // holds on a line with no cap yet: they are not kept on the line
        let r = l.check(&req("b@x.com", "sora", 5), t, t + 60).reservation.unwrap();
        l.check(&req("b@x.com", "sora", 2), t, t + 60);
        let mut limit = Limit { credits: Credits::from_whole(100), ..Default::default() };
        limit.products.insert("sora".into(), Credits::from_whole(10));
        l.apply_limits([("b@x.com".to_string(), Some(UserLimit { limit, group: Some("eng".into()) }))], []);
        let d = l.check(&req("b@x.com", "sora", 4), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (false, Deciding::ProductCap, 3_000_000));
        assert!(l.release_id(r, None).is_ok());
        let d = l.check(&req("b@x.com", "sora", 4), t, t + 60);
        assert_eq!((d.allowed, d.deciding, d.remaining), (true, Deciding::ProductCap, 4_000_000));
        // products whose ids share the cap bit of "sora" are not capped by it
        for p in 0..20 {
            let name = format!("p{p}");
            assert!(l.check(&req("b@x.com", &name, 1), t, t + 60).allowed, "{name}");
        }
        // removing the cap stops counting on the line
        let limit = Limit { credits: Credits::from_whole(100), ..Default::default() };
        l.apply_limits([("b@x.com".to_string(), Some(UserLimit { limit, group: Some("eng".into()) }))], []);
        let sora = l.products.get("sora").unwrap();
        assert_eq!(l.slots[1].lines.get(Kind::Product, sora).map(|x| (x.capped, x.held)), Some((false, 0)));
    }

    #[test]
    fn soft_enforcement_allows_and_flags() {
        let mut l = ledger();
        let settings = Settings { enforcement: Enforcement::Soft, ..Settings::default() };
        let period = Ledger::period_for(&settings, now());
        l.load_usage(settings, period, vec![]);
        let t = now().timestamp();
        let d = l.check(&req("a@x.com", "chatgpt", 500), t, t + 60);
        assert!(d.allowed && d.over_limit);
        let d = l.check(&req("nobody@x.com", "chatgpt", 1), t, t + 60);
        assert!(!d.allowed && d.no_limit);
    }
}
