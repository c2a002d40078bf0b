//! The usage table: usage in memory as compact rows, and the fast aggregation over them.
//!
//! A [`UsageTable`] holds usage rows in struct-of-arrays form — an interned user
//! (the user's index in the directory, or an extra id for a user the directory
//! does not know), interned product and model, a day number and exact
//! micro-credits — so aggregating tens of millions of rows is one tight loop over
//! plain integers. Reading files into a table is [`crate::input::usage`]; what the
//! sums mean for limits is [`crate::evaluate`].

use std::ops::Range;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::diag::{Code, Diagnostic, Location};
use crate::directory::Directory;
use crate::{Credits, FastMap};

/// Day 0 of [`day_number`] is 1970-01-01, which is this many days from the common era.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A date as a day number (days since 1970-01-01).
pub fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The date of a day number.
pub fn day_date(day: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(day.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// Names interned to small dense ids.
#[derive(Debug, Clone, Default)]
struct Interner {
    names: Vec<String>,
    ids: FastMap<Box<[u8]>, u32>,
}

impl Interner {
    fn get_or_insert(&mut self, name: &[u8], max: usize) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        if self.names.len() >= max {
            return None;
        }
        let id = u32::try_from(self.names.len()).ok()?;
        self.names.push(String::from_utf8_lossy(name).into_owned());
        self.ids.insert(name.into(), id);
        Some(id)
    }

    fn get(&self, name: &[u8]) -> Option<u32> {
        self.ids.get(name).copied()
    }
}

/// A user seen in usage but absent from the directory.
#[derive(Debug, Clone)]
pub struct UnknownUser {
    /// The user's canonical key ([`crate::identity::canonical`]).
    pub email: String,
    /// The first row that named them.
    pub first: Location,
}

/// Why a row could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// More distinct products than ids (65,536).
    #[error("too many distinct products")]
    TooManyProducts,
    /// More distinct models than ids (65,536).
    #[error("too many distinct models")]
    TooManyModels,
    /// More distinct users than ids.
    #[error("too many distinct users")]
    TooManyUsers,
    /// More distinct context values than a table holds (16,777,216).
    #[error("too many distinct context values")]
    TooManyContexts,
    /// The user is only whitespace.
    #[error("row has no user")]
    NoUser,
    /// The user has a character that cannot be seen ([`crate::identity::hidden`]).
    #[error("the user contains {}, U+{:04X}, which cannot be seen", kind.describe(), u32::from(*ch))]
    HiddenCharacter {
        /// The first such character.
        ch: char,
        /// What kind of character it is.
        kind: crate::identity::Hidden,
    },
}

/// Usage rows in struct-of-arrays form, interned against one directory.
#[derive(Debug, Clone)]
pub struct UsageTable {
    directory_users: u32,
    users: FastMap<Box<[u8]>, u32>,
    /// The key of each directory user in `users`, by id (empty where a later user of
    /// the same spelling holds the key): rows in directory order name the next user
    /// found here, cheaper than a hash lookup ([`UsageTable::next_directory_user`]).
    emails: Arc<[Box<[u8]>]>,
    unknown: Vec<UnknownUser>,
    products: Interner,
    models: Interner,
    /// User id per row: `< directory_users()` is an index into the directory, the rest
    /// index [`UsageTable::unknown_users`] after subtracting `directory_users()`.
    pub user: Vec<u32>,
    /// Product id per row, into [`UsageTable::products`].
    pub product: Vec<u16>,
    /// Model id per row, into [`UsageTable::models`].
    pub model: Vec<u16>,
    /// Day number per row ([`day_number`]), a date in the workspace timezone.
    pub day: Vec<i32>,
    /// Credits per row in micro-credits ([`Credits::micros`]), never negative.
    pub micros: Vec<i64>,
    /// The sum of every row, or `None` once it passed `i64::MAX` micro-credits. Rows
    /// are never negative, so while the grand total fits every partial sum the
    /// aggregation loops compute (per user, day, product) fits too: they add without
    /// overflow checks in their hot loops because this one is checked here.
    total_micros: Option<i64>,
    /// The context of the rows that carry one; `None` while no row has (the usual
    /// case: a file without context columns costs nothing more per row).
    context: Option<Box<ContextRows>>,
}

/// The keys of an event's `context` that usage is broken down by; any other key is
/// kept by the service but not read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContextKey {
    /// The repository the work was for (`owner/name`).
    Repo,
    /// The ticket the work was for (`ENG-123`).
    Ticket,
    /// The automated workflow that spent (`ci-review`), empty for interactive use.
    Workflow,
}

impl ContextKey {
    /// Every documented key, in the order of a row's values.
    pub const ALL: [ContextKey; 3] = [ContextKey::Repo, ContextKey::Ticket, ContextKey::Workflow];

    /// The key's name in `context` (`repo`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContextKey::Repo => "repo",
            ContextKey::Ticket => "ticket",
            ContextKey::Workflow => "workflow",
        }
    }

    /// The key a name stands for (`repo`, `ticket`, `workflow`).
    pub fn parse(name: &str) -> Option<ContextKey> {
        ContextKey::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The values of a row's documented context keys, as bytes (`None`: absent).
pub type ContextValues<'a> = [Option<&'a [u8]>; 3];

/// The rows that carry a context: their positions and interned values (sparse: most
/// usage has none).
#[derive(Debug, Clone, Default)]
struct ContextRows {
    names: Interner,
    /// Row index per entry, increasing.
    rows: Vec<usize>,
    /// One value per [`ContextKey`]: a name id plus one, 0 when absent.
    values: Vec<[u32; 3]>,
}

/// Most distinct context values a table interns; past it a row's context is refused.
const MAX_CONTEXT_VALUES: usize = 1 << 24;

impl UsageTable {
    /// An empty table whose user ids are the directory's positions.
    pub fn new(dir: &Directory) -> Self {
        let mut users = FastMap::with_capacity_and_hasher(dir.len(), Default::default());
        for (i, user) in dir.users.iter().enumerate() {
            users.insert(user.email.as_bytes().into(), u32::try_from(i).unwrap_or(u32::MAX));
        }
        let emails = dir
            .users
            .iter()
            .enumerate()
            .map(|(i, user)| match users.get(user.email.as_bytes()) {
                Some(&id) if id as usize == i => user.email.as_bytes().into(),
                _ => Box::default(),
            })
            .collect();
        UsageTable {
            directory_users: u32::try_from(dir.len()).unwrap_or(u32::MAX),
            users,
            emails,
            unknown: Vec::new(),
            products: Interner::default(),
            models: Interner::default(),
            user: Vec::new(),
            product: Vec::new(),
            model: Vec::new(),
            day: Vec::new(),
            micros: Vec::new(),
            total_micros: Some(0),
            context: None,
        }
    }

    /// The sum of every row, unless it is too large to add up exactly
    /// (more than `i64::MAX` micro-credits, about 9.2 trillion credits).
    pub fn total(&self) -> Option<Credits> {
        self.total_micros.map(Credits::from_micros)
    }

    /// Reserves room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.user.reserve(rows);
        self.product.reserve(rows);
        self.model.reserve(rows);
        self.day.reserve(rows);
        self.micros.reserve(rows);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// Number of directory users (ids below this are directory positions).
    pub fn directory_users(&self) -> usize {
        self.directory_users as usize
    }

    /// Number of user ids: directory users plus unknown ones.
    pub fn user_count(&self) -> usize {
        self.directory_users as usize + self.unknown.len()
    }

    /// Users seen in usage but not in the directory, in order of first appearance.
    pub fn unknown_users(&self) -> &[UnknownUser] {
        &self.unknown
    }

    /// Interned product names, by id.
    pub fn products(&self) -> &[String] {
        &self.products.names
    }

    /// Interned model names, by id.
    pub fn models(&self) -> &[String] {
        &self.models.names
    }

    /// The id of a product, when some row uses it.
    pub fn product_id(&self, name: &str) -> Option<u16> {
        self.products.get(name.as_bytes()).and_then(|i| u16::try_from(i).ok())
    }

    /// The id of a model, when some row uses it.
    pub fn model_id(&self, name: &str) -> Option<u16> {
        self.models.get(name.as_bytes()).and_then(|i| u16::try_from(i).ok())
    }

    /// The email of a user id.
    pub fn user_email<'a>(&'a self, dir: &'a Directory, id: u32) -> &'a str {
        match id.checked_sub(self.directory_users) {
            None => dir.users.get(id as usize).map_or("", |u| u.email.as_str()),
            Some(k) => self.unknown.get(k as usize).map_or("", |u| u.email.as_str()),
        }
    }

    /// Interns a user by their canonical key, so `Eve@acme.com` is counted against
    /// `eve@acme.com`; a user absent from the directory gets a new id, and `first` is
    /// remembered as where they were first seen. A key with a hidden character is refused.
    pub fn intern_user(&mut self, email: &[u8], first: impl FnOnce() -> Location) -> Result<u32, PushError> {
        if let Some(&id) = self.users.get(email) {
            return Ok(id);
        }
        // A spelling not seen yet: normalising costs once per distinct spelling, not per row.
        let text = String::from_utf8_lossy(email);
        let canonical = match crate::identity::canonical(&text) {
            Ok(c) => c,
            Err(crate::identity::IdentityError::Hidden { ch, kind, .. }) => {
                return Err(PushError::HiddenCharacter { ch, kind });
            }
            Err(_) => return Err(PushError::NoUser),
        };
        let id = match self.users.get(canonical.as_bytes()) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.user_count()).map_err(|_| PushError::TooManyUsers)?;
                self.users.insert(canonical.as_bytes().into(), id);
                self.unknown.push(UnknownUser { email: canonical.clone().into_owned(), first: first() });
                id
            }
        };
        if *canonical.as_bytes() != *email {
            // Remember this spelling too: the next row written the same way is a plain lookup.
            self.users.insert(email.into(), id);
        }
        Ok(id)
    }

    /// The id [`UsageTable::intern_user`] gives `email` when it is one of the few
    /// directory users after `last`, else `None`. Exports sorted by day list a day's
    /// users in directory order; looking a few entries ahead in a list read in order
    /// costs less than a hash lookup that misses the cache.
    #[inline]
    pub(crate) fn next_directory_user(&self, last: u32, email: &[u8]) -> Option<u32> {
        const AHEAD: usize = 4;
        let from = (last as usize).checked_add(1)?;
        let k = self.emails.get(from..)?.iter().take(AHEAD).position(|e| **e == *email)?;
        u32::try_from(from + k).ok()
    }

    /// Interns a product name.
    pub fn intern_product(&mut self, name: &[u8]) -> Result<u16, PushError> {
        self.products
            .get_or_insert(name, 1 << 16)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or(PushError::TooManyProducts)
    }

    /// Interns a model name.
    pub fn intern_model(&mut self, name: &[u8]) -> Result<u16, PushError> {
        self.models
            .get_or_insert(name, 1 << 16)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or(PushError::TooManyModels)
    }

    /// Appends an interned row.
    #[inline]
    pub fn push_ids(&mut self, user: u32, product: u16, model: u16, day: i32, credits: Credits) {
        self.user.push(user);
        self.product.push(product);
        self.model.push(model);
        self.day.push(day);
        self.micros.push(credits.micros());
        self.total_micros = self.total_micros.and_then(|t| t.checked_add(credits.micros()));
    }

    /// Gives the last row pushed its context; a row without any documented key costs nothing.
    pub fn push_context(&mut self, values: ContextValues<'_>) -> Result<(), PushError> {
        if values.iter().all(Option::is_none) {
            return Ok(());
        }
        let Some(row) = self.len().checked_sub(1) else { return Ok(()) };
        let context = self.context.get_or_insert_with(Box::default);
        let mut ids = [0u32; 3];
        for (id, value) in ids.iter_mut().zip(values) {
            if let Some(v) = value {
                *id =
                    context.names.get_or_insert(v, MAX_CONTEXT_VALUES).ok_or(PushError::TooManyContexts)? + 1;
            }
        }
        context.rows.push(row);
        context.values.push(ids);
        Ok(())
    }

    /// True when some row carries a context.
    pub fn has_context(&self) -> bool {
        self.context.as_ref().is_some_and(|c| !c.rows.is_empty())
    }

    /// Every row with a value for `key`, as (row index, value), in row order.
    pub fn context_rows(&self, key: ContextKey) -> impl Iterator<Item = (usize, &str)> + '_ {
        let k = key.index();
        self.context.iter().flat_map(move |c| {
            c.rows.iter().zip(&c.values).filter_map(move |(&row, v)| {
                let id = v[k].checked_sub(1)?;
                Some((row, c.names.names.get(id as usize)?.as_str()))
            })
        })
    }

    /// Appends a row by names (for tests and programmatic ingestion).
    pub fn push(
        &mut self,
        date: NaiveDate,
        user: &str,
        product: &str,
        model: &str,
        credits: Credits,
    ) -> Result<(), PushError> {
        let u = self.intern_user(user.as_bytes(), || Location::file_start("<memory>".into()))?;
        let p = self.intern_product(product.as_bytes())?;
        let m = self.intern_model(model.as_bytes())?;
        self.push_ids(u, p, m, day_number(date), credits);
        Ok(())
    }

    /// One warning per user absent from the directory, at the first row naming them,
    /// with their row count and credits (all rows, any period).
    pub fn unknown_user_diagnostics(&self) -> Vec<Diagnostic> {
        if self.unknown.is_empty() {
            return Vec::new();
        }
        let mut rows = vec![0u64; self.unknown.len()];
        let mut sum = vec![0i64; self.unknown.len()];
        for (&u, &m) in self.user.iter().zip(&self.micros) {
            if let Some(k) = u.checked_sub(self.directory_users) {
                rows[k as usize] += 1;
                sum[k as usize] = sum[k as usize].wrapping_add(m);
            }
        }
        self.unknown
            .iter()
            .enumerate()
            .map(|(k, u)| {
                Diagnostic::warning(
                    Code::UsageUnknownUser,
                    format!("user `{}` is not in the directory", u.email),
                )
                .at(u.first.clone())
                .with_label(format!(
                    "{} row{}, {} credits",
                    rows[k],
                    if rows[k] == 1 { "" } else { "s" },
                    Credits::from_micros(sum[k])
                ))
                .with_help(
                    "their usage is kept and counted in workspace totals, but no limit applies to them; \
                         add them to the directory",
                )
            })
            .collect()
    }

    /// Sums the rows of a period: per user (total, recent window, tracked products and
    /// models) and per day × product × model.
    pub fn aggregate(&self, spec: &AggregateSpec) -> Aggregate {
        Aggregate::compute(self, spec, &[])
    }

    /// [`UsageTable::aggregate`], also finding the first day by whose end each user's
    /// cumulative usage reached their budget ([`Aggregate::reached_on`]): `budgets`
    /// holds micro-credits per user id; a missing entry, or zero or less, watches nothing.
    pub fn aggregate_watching(&self, spec: &AggregateSpec, budgets: &[i64]) -> Aggregate {
        Aggregate::compute(self, spec, budgets)
    }

    /// The rows dated before `days` and the rows dated on or after its end: how many,
    /// their credits and the days they span. Rows outside a period are not counted
    /// in it; this says so rather than let them vanish.
    pub fn rows_outside(&self, days: Range<i32>) -> (RowsOutside, RowsOutside) {
        let (mut before, mut after) = (RowsOutside::default(), RowsOutside::default());
        for (&d, &m) in self.day.iter().zip(&self.micros) {
            let side = if d < days.start {
                &mut before
            } else if d >= days.end {
                &mut after
            } else {
                continue;
            };
            side.add(d, m);
        }
        (before, after)
    }

    /// Per-day sums of the period for a few users (for the day a limit was reached);
    /// `out[k][d]` is user `users[k]`'s usage on day `spec.days.start + d`.
    pub fn daily_for(&self, days: Range<i32>, users: &[u32]) -> Vec<Vec<i64>> {
        let width = usize::try_from(days.end - days.start).unwrap_or(0);
        let mut out = vec![vec![0i64; width]; users.len()];
        if users.is_empty() || width == 0 {
            return out;
        }
        const NONE: u32 = u32::MAX;
        let mut slot = vec![NONE; self.user_count()];
        for (k, &u) in users.iter().enumerate() {
            if let Some(s) = slot.get_mut(u as usize) {
                *s = u32::try_from(k).unwrap_or(NONE);
            }
        }
        for i in 0..self.len() {
            let s = slot[self.user[i] as usize];
            let d = self.day[i];
            if s != NONE && d >= days.start && d < days.end {
                let cell = &mut out[s as usize][(d - days.start) as usize];
                *cell = cell.wrapping_add(self.micros[i]);
            }
        }
        out
    }
}

/// A table filled apart from a main one — by another thread, over a slice of a
/// file — with how its interned ids map into the main table so far.
///
/// Ids are interned in order of first appearance, so merging shards in file order
/// ([`UsageTable::merge_shards`]) gives every name, user and row the id and place a
/// single pass over the file would have given it.
#[derive(Debug, Clone)]
pub(crate) struct Shard {
    /// The shard's own rows and names.
    pub(crate) table: UsageTable,
    /// Main-table id of each of the shard's unknown users merged so far.
    users: Vec<u32>,
    /// Main-table id of each of the shard's products merged so far.
    products: Vec<u16>,
    /// Main-table id of each of the shard's models merged so far.
    models: Vec<u16>,
    /// Main-table id of each of the shard's context values merged so far.
    contexts: Vec<u32>,
}

impl Shard {
    /// An empty shard interned against the same directory as `main`.
    pub(crate) fn new(main: &UsageTable) -> Shard {
        // Only the directory's own spellings: unknown users are the shard's to number.
        let mut users = FastMap::with_capacity_and_hasher(main.directory_users(), Default::default());
        for (k, &id) in &main.users {
            if id < main.directory_users {
                users.insert(k.clone(), id);
            }
        }
        let table = UsageTable {
            directory_users: main.directory_users,
            users,
            emails: main.emails.clone(),
            unknown: Vec::new(),
            products: Interner::default(),
            models: Interner::default(),
            user: Vec::new(),
            product: Vec::new(),
            model: Vec::new(),
            day: Vec::new(),
            micros: Vec::new(),
            total_micros: Some(0),
            context: None,
        };
        Shard { table, users: Vec::new(), products: Vec::new(), models: Vec::new(), contexts: Vec::new() }
    }
}

/// The names of an interner's ids from `from` on, as the bytes they were interned
/// from (the display names are lossy for bytes that are not UTF-8).
fn raw_names(interner: &Interner, from: usize) -> Vec<&[u8]> {
    let mut out = vec![&b""[..]; interner.names.len().saturating_sub(from)];
    for (key, &id) in &interner.ids {
        if let Some(slot) = (id as usize).checked_sub(from).and_then(|k| out.get_mut(k)) {
            *slot = key;
        }
    }
    out
}

impl UsageTable {
    /// Forgets the rows (not the interned names), ready for the next slice of a file.
    pub(crate) fn clear_rows(&mut self) {
        self.user.clear();
        self.product.clear();
        self.model.clear();
        self.day.clear();
        self.micros.clear();
        self.total_micros = Some(0);
        if let Some(c) = self.context.as_mut() {
            c.rows.clear();
            c.values.clear();
        }
    }

    /// Appends the rows of `shards`, in order, as if they had been pushed here one
    /// after the other, then clears the shards' rows. `line_base[k]` is the line of
    /// the file where shard `k`'s rows start (its own lines count from 1), to place
    /// where its unknown users were first seen. Refuses, changing nothing, when
    /// the shards together might pass the number of ids: the caller then reads
    /// their rows again here, where the limits are checked row by row.
    pub(crate) fn merge_shards(
        &mut self,
        shards: &mut [&mut Shard],
        line_base: &[u32],
    ) -> Result<(), PushError> {
        let new =
            |f: fn(&Shard) -> (usize, usize)| shards.iter().map(|s| f(s)).fold(0usize, |a, (n, m)| a + n - m);
        if self.products.names.len() + new(|s| (s.table.products.names.len(), s.products.len())) > 1 << 16 {
            return Err(PushError::TooManyProducts);
        }
        if self.models.names.len() + new(|s| (s.table.models.names.len(), s.models.len())) > 1 << 16 {
            return Err(PushError::TooManyModels);
        }
        fn context_names(t: &UsageTable) -> usize {
            t.context.as_ref().map_or(0, |c| c.names.names.len())
        }
        if context_names(self) + new(|s| (context_names(&s.table), s.contexts.len())) > MAX_CONTEXT_VALUES {
            return Err(PushError::TooManyContexts);
        }
        if self.user_count() as u64 + new(|s| (s.table.unknown.len(), s.users.len())) as u64
            > u64::from(u32::MAX)
        {
            return Err(PushError::TooManyUsers);
        }
        // Names first, shard by shard in file order: a name new to this table gets
        // the next id exactly when its first row would have interned it.
        for (shard, &base) in shards.iter_mut().zip(line_base) {
            for name in raw_names(&shard.table.products, shard.products.len()) {
                shard.products.push(self.intern_product(name)?);
            }
            for name in raw_names(&shard.table.models, shard.models.len()) {
                shard.models.push(self.intern_model(name)?);
            }
            for u in &shard.table.unknown[shard.users.len()..] {
                let id = match self.users.get(u.email.as_bytes()) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(self.user_count()).map_err(|_| PushError::TooManyUsers)?;
                        self.users.insert(u.email.as_bytes().into(), id);
                        let mut first = u.first.clone();
                        first.line = base.saturating_add(first.line.saturating_sub(1));
                        self.unknown.push(UnknownUser { email: u.email.clone(), first });
                        id
                    }
                };
                shard.users.push(id);
            }
        }
        // Context next, on this thread: sparse, and absent from most files.
        let old = self.len();
        let mut offset = old;
        for shard in shards.iter_mut() {
            if let Some(theirs) = shard.table.context.as_ref().filter(|c| !c.rows.is_empty()) {
                let ours = self.context.get_or_insert_with(Box::default);
                for name in raw_names(&theirs.names, shard.contexts.len()) {
                    let id = ours
                        .names
                        .get_or_insert(name, MAX_CONTEXT_VALUES)
                        .ok_or(PushError::TooManyContexts)?;
                    shard.contexts.push(id);
                }
                for (&row, v) in theirs.rows.iter().zip(&theirs.values) {
                    ours.rows.push(offset + row);
                    ours.values.push(v.map(|id| match id.checked_sub(1) {
                        Some(k) => shard.contexts.get(k as usize).map_or(0, |m| m + 1),
                        None => 0,
                    }));
                }
            }
            offset += shard.table.len();
        }
        // Rows next, each shard copying its own into its place on its own thread.
        let added: usize = shards.iter().map(|s| s.table.len()).sum();
        for s in shards.iter() {
            self.total_micros = match (self.total_micros, s.table.total_micros) {
                (Some(a), Some(b)) => a.checked_add(b),
                _ => None,
            };
        }
        self.user.resize(old + added, 0);
        self.product.resize(old + added, 0);
        self.model.resize(old + added, 0);
        self.day.resize(old + added, 0);
        self.micros.resize(old + added, 0);
        let directory = self.directory_users;
        let mut user = &mut self.user[old..];
        let mut product = &mut self.product[old..];
        let mut model = &mut self.model[old..];
        let mut day = &mut self.day[old..];
        let mut micros = &mut self.micros[old..];
        std::thread::scope(|scope| {
            for shard in shards.iter_mut() {
                let n = shard.table.len();
                let (u, rest) = std::mem::take(&mut user).split_at_mut(n);
                user = rest;
                let (p, rest) = std::mem::take(&mut product).split_at_mut(n);
                product = rest;
                let (m, rest) = std::mem::take(&mut model).split_at_mut(n);
                model = rest;
                let (d, rest) = std::mem::take(&mut day).split_at_mut(n);
                day = rest;
                let (c, rest) = std::mem::take(&mut micros).split_at_mut(n);
                micros = rest;
                let shard: &mut Shard = shard;
                scope.spawn(move || {
                    let t = &shard.table;
                    for (out, &id) in u.iter_mut().zip(&t.user) {
                        // INVARIANT: every shard id below `directory` is a directory
                        // position; the rest index its unknown users, all mapped above.
                        *out = match id.checked_sub(directory) {
                            None => id,
                            Some(k) => shard.users[k as usize],
                        };
                    }
                    for (out, &id) in p.iter_mut().zip(&t.product) {
                        *out = shard.products[id as usize];
                    }
                    for (out, &id) in m.iter_mut().zip(&t.model) {
                        *out = shard.models[id as usize];
                    }
                    d.copy_from_slice(&t.day);
                    c.copy_from_slice(&t.micros);
                    shard.table.clear_rows();
                });
            }
        });
        Ok(())
    }
}

/// Usage rows on one side of a range of days ([`UsageTable::rows_outside`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RowsOutside {
    /// How many rows.
    pub rows: u64,
    /// Their credits.
    pub credits: Credits,
    /// The earliest of their days, in the workspace time zone.
    pub first_date: Option<NaiveDate>,
    /// The latest of their days, in the workspace time zone.
    pub last_date: Option<NaiveDate>,
}

impl RowsOutside {
    fn add(&mut self, day: i32, micros: i64) {
        self.rows += 1;
        self.credits = self.credits.saturating_add(Credits::from_micros(micros));
        let date = day_date(day);
        if self.first_date.is_none_or(|f| date.is_some_and(|d| d < f)) {
            self.first_date = date;
        }
        if self.last_date.is_none_or(|l| date.is_some_and(|d| d > l)) {
            self.last_date = date;
        }
    }
}

/// What to aggregate.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// The period's day numbers, end exclusive.
    pub days: Range<i32>,
    /// First day of the recent window (the burn rate); rows from it to the period's end count.
    pub recent_from: i32,
    /// Product ids summed per user (those some limit caps).
    pub products: Vec<u16>,
    /// Model ids summed per user (those some limit caps).
    pub models: Vec<u16>,
}

/// The sums of one period.
#[derive(Debug, Clone)]
pub struct Aggregate {
    stride: usize,
    /// Per user id, `stride` cells: total, recent, the budget still to reach (then
    /// `i64::MAX`), the day it was reached, each tracked product, each tracked
    /// model, and a scratch cell that absorbs untracked products and models.
    cells: Vec<i64>,
    tracked_products: usize,
    days: Range<i32>,
    by_day: Vec<i64>,
    by_product: Vec<i64>,
    by_model: Vec<i64>,
    by_day_product: Vec<i64>,
    /// Rows inside the period.
    pub rows: u64,
}

/// Above this many day × product × model cells the histogram is not worth it.
const MAX_HIST_CELLS: usize = 1 << 20;

/// Cell offsets in a user's row of [`Aggregate::cells`].
const TOTAL: usize = 0;
const RECENT: usize = 1;
const BUDGET: usize = 2;
const REACHED: usize = 3;
const FIRST_TRACKED: usize = 4;

/// The `REACHED` cell of a user who has not reached their budget.
const NOT_REACHED: i64 = i64::MAX;

/// The most product × model combinations summed run by run (one bit each in [`Run::touched`]).
const RUN_COMBOS: usize = 64;

/// The rows of one user on one day, summed per product × model combination.
struct Run {
    combos: [i64; RUN_COMBOS],
    /// The combinations with rows in this run.
    touched: u64,
    user: usize,
    day: i32,
}

impl Run {
    /// Adds the run to its user's cells and its day of the histogram, and empties it.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn flush(
        &mut self,
        cells: &mut [i64],
        stride: usize,
        hist: &mut [i64],
        pm: usize,
        start: i32,
        recent: i32,
        cp: &[usize],
        cm: &[usize],
    ) {
        if self.touched == 0 {
            return;
        }
        let base = self.user * stride;
        let h = usize::try_from(self.day - start).unwrap_or(0) * pm;
        let (Some(row), Some(hist)) = (cells.get_mut(base..base + stride), hist.get_mut(h..h + pm)) else {
            return;
        };
        let mut sum = 0i64;
        let mut t = self.touched;
        while t != 0 {
            let c = t.trailing_zeros() as usize;
            t &= t - 1;
            let v = self.combos[c];
            self.combos[c] = 0;
            sum = sum.wrapping_add(v);
            hist[c] = hist[c].wrapping_add(v);
            row[cp[c]] = row[cp[c]].wrapping_add(v);
            row[cm[c]] = row[cm[c]].wrapping_add(v);
        }
        self.touched = 0;
        let total = row[TOTAL].wrapping_add(sum);
        row[TOTAL] = total;
        if self.day >= recent {
            row[RECENT] = row[RECENT].wrapping_add(sum);
        }
        if total >= row[BUDGET] {
            row[REACHED] = i64::from(self.day);
            row[BUDGET] = i64::MAX;
        }
    }
}

impl Aggregate {
    fn compute(table: &UsageTable, spec: &AggregateSpec, budgets: &[i64]) -> Aggregate {
        let n_products = table.products().len();
        let n_models = table.models().len();
        let tracked = spec.products.len() + spec.models.len();
        let stride = FIRST_TRACKED + tracked + 1;
        let scratch = stride - 1;
        // INVARIANT: every slot is < stride, so a row's writes stay in its user's cells.
        let mut pslot = vec![scratch; n_products.max(1)];
        for (k, &p) in spec.products.iter().enumerate() {
            if let Some(s) = pslot.get_mut(p as usize) {
                *s = FIRST_TRACKED + k;
            }
        }
        let mut mslot = vec![scratch; n_models.max(1)];
        for (k, &m) in spec.models.iter().enumerate() {
            if let Some(s) = mslot.get_mut(m as usize) {
                *s = FIRST_TRACKED + spec.products.len() + k;
            }
        }
        let width = usize::try_from(spec.days.end.saturating_sub(spec.days.start)).unwrap_or(0);
        let mut cells = vec![0i64; table.user_count() * stride];
        for (u, row) in cells.chunks_exact_mut(stride).enumerate() {
            let budget = budgets.get(u).copied().unwrap_or(0);
            row[BUDGET] = if budget > 0 { budget } else { i64::MAX };
            row[REACHED] = NOT_REACHED;
        }
        let hist_cells = width.saturating_mul(n_products.max(1)).saturating_mul(n_models.max(1));
        let use_hist = hist_cells <= MAX_HIST_CELLS;
        let mut hist = vec![0i64; if use_hist { hist_cells } else { 0 }];
        let (start, end, recent) = (spec.days.start, spec.days.end, spec.recent_from);
        let (pm, m_n) = (n_products.max(1) * n_models.max(1), n_models.max(1));
        let mut rows = 0u64;
        // The day a budget is reached is read off the running total when rows come in
        // day order with no negative credits (as readers and `gen` produce them);
        // otherwise a second scan works it out from per-day sums.
        let mut prev_day = i32::MIN;
        let mut unordered = false;
        let mut any_negative = 0i64;
        let n = table.len();
        let (users, products, models, day, micros) =
            (&table.user[..n], &table.product[..n], &table.model[..n], &table.day[..n], &table.micros[..n]);
        // Sums wrap rather than panic: an i64 of micro-credits holds 9.2 trillion credits.
        if use_hist && pm <= RUN_COMBOS {
            // Rows of one user and day mostly come together: sum each such run per
            // product × model combination in a small local array, then add it to the
            // user's cells and the histogram once.
            let cp: Vec<usize> = (0..pm).map(|c| pslot[c / m_n]).collect();
            let cm: Vec<usize> = (0..pm).map(|c| mslot[c % m_n]).collect();
            let mut run = Run { combos: [0; RUN_COMBOS], touched: 0, user: 0, day: 0 };
            for i in 0..n {
                let d = day[i];
                if d < start || d >= end {
                    continue;
                }
                let u = users[i] as usize;
                if u != run.user || d != run.day {
                    unordered |= d < prev_day;
                    prev_day = d;
                    run.flush(&mut cells, stride, &mut hist, pm, start, recent, &cp, &cm);
                    run.user = u;
                    run.day = d;
                }
                rows += 1;
                let m = micros[i];
                any_negative |= m;
                let c = (products[i] as usize * m_n + models[i] as usize) % RUN_COMBOS;
                run.combos[c] = run.combos[c].wrapping_add(m);
                run.touched |= 1 << c;
            }
            run.flush(&mut cells, stride, &mut hist, pm, start, recent, &cp, &cm);
        } else {
            for i in 0..n {
                let d = day[i];
                if d < start || d >= end {
                    continue;
                }
                unordered |= d < prev_day;
                prev_day = d;
                rows += 1;
                let m = micros[i];
                any_negative |= m;
                let p = products[i] as usize;
                let mo = models[i] as usize;
                let base = users[i] as usize * stride;
                let row = &mut cells[base..base + stride];
                let total = row[TOTAL].wrapping_add(m);
                row[TOTAL] = total;
                row[RECENT] = row[RECENT].wrapping_add(m & -i64::from(d >= recent));
                if total >= row[BUDGET] {
                    row[REACHED] = i64::from(d);
                    row[BUDGET] = i64::MAX;
                }
                row[pslot[p]] = row[pslot[p]].wrapping_add(m);
                row[mslot[mo]] = row[mslot[mo]].wrapping_add(m);
                if use_hist {
                    let h = (d - start) as usize * pm + p * m_n + mo;
                    hist[h] = hist[h].wrapping_add(m);
                }
            }
        }
        let mut agg = Aggregate {
            stride,
            cells,
            tracked_products: spec.products.len(),
            days: spec.days.clone(),
            by_day: vec![0; width],
            by_product: vec![0; n_products],
            by_model: vec![0; n_models],
            by_day_product: vec![0; width * n_products],
            rows,
        };
        if use_hist {
            for (h, &v) in hist.iter().enumerate() {
                if v == 0 {
                    continue;
                }
                let (d, p, mo) = (h / pm, (h % pm) / m_n, h % m_n);
                agg.by_day[d] += v;
                agg.by_product[p] += v;
                agg.by_model[mo] += v;
                agg.by_day_product[d * n_products + p] += v;
            }
        } else {
            agg.margins_by_scan(table);
        }
        if unordered || any_negative < 0 {
            agg.reached_by_scan(table, budgets);
        }
        agg
    }

    /// Works out the day each budget was reached from per-day sums, for rows that do
    /// not come in day order or that hold negative credits.
    fn reached_by_scan(&mut self, table: &UsageTable, budgets: &[i64]) {
        let stride = self.stride;
        let mut watched: Vec<u32> = Vec::new();
        for (u, row) in self.cells.chunks_exact_mut(stride).enumerate() {
            row[REACHED] = NOT_REACHED;
            let budget = budgets.get(u).copied().unwrap_or(0);
            if budget > 0 && row[TOTAL] >= budget {
                watched.push(u32::try_from(u).unwrap_or(u32::MAX));
            }
        }
        let daily = table.daily_for(self.days.clone(), &watched);
        for (k, &u) in watched.iter().enumerate() {
            let budget = budgets.get(u as usize).copied().unwrap_or(0);
            let mut cum = 0i64;
            for (d, &v) in daily[k].iter().enumerate() {
                cum = cum.wrapping_add(v);
                if cum >= budget {
                    if let (Ok(d), Some(cell)) =
                        (i32::try_from(d), self.cells.get_mut(u as usize * stride + REACHED))
                    {
                        *cell = i64::from(self.days.start + d);
                    }
                    break;
                }
            }
        }
    }

    /// Builds the day, product and model sums with a second scan, when the
    /// day × product × model cube is too large to fill in the main loop.
    fn margins_by_scan(&mut self, table: &UsageTable) {
        let n_products = self.by_product.len();
        for i in 0..table.len() {
            let d = table.day[i];
            if d < self.days.start || d >= self.days.end {
                continue;
            }
            let m = table.micros[i];
            let (d, p) = ((d - self.days.start) as usize, table.product[i] as usize);
            self.by_day[d] = self.by_day[d].wrapping_add(m);
            self.by_product[p] = self.by_product[p].wrapping_add(m);
            self.by_model[table.model[i] as usize] = self.by_model[table.model[i] as usize].wrapping_add(m);
            self.by_day_product[d * n_products + p] = self.by_day_product[d * n_products + p].wrapping_add(m);
        }
    }

    fn cell(&self, user: u32, at: usize) -> i64 {
        self.cells.get(user as usize * self.stride + at).copied().unwrap_or(0)
    }

    /// A user's usage in the period.
    pub fn used(&self, user: u32) -> Credits {
        Credits::from_micros(self.cell(user, TOTAL))
    }

    /// A user's usage in the recent window.
    pub fn recent(&self, user: u32) -> Credits {
        Credits::from_micros(self.cell(user, RECENT))
    }

    /// The first day (a day number) by whose end a user's cumulative usage in the
    /// period reached their budget ([`UsageTable::aggregate_watching`]), if it did.
    pub fn reached_on(&self, user: u32) -> Option<i32> {
        let day = self.cells.get(user as usize * self.stride + REACHED).copied()?;
        if day == NOT_REACHED { None } else { i32::try_from(day).ok() }
    }

    /// A user's usage of the `k`-th tracked product ([`AggregateSpec::products`]).
    pub fn product_used(&self, user: u32, k: usize) -> Credits {
        Credits::from_micros(self.cell(user, FIRST_TRACKED + k))
    }

    /// A user's usage of the `k`-th tracked model ([`AggregateSpec::models`]).
    pub fn model_used(&self, user: u32, k: usize) -> Credits {
        Credits::from_micros(self.cell(user, FIRST_TRACKED + self.tracked_products + k))
    }

    /// The period's days (day numbers, end exclusive).
    pub fn days(&self) -> Range<i32> {
        self.days.clone()
    }

    /// Usage per day of the period, all users.
    pub fn by_day(&self) -> &[i64] {
        &self.by_day
    }

    /// Usage per product id, all users.
    pub fn by_product(&self) -> &[i64] {
        &self.by_product
    }

    /// Usage per model id, all users.
    pub fn by_model(&self) -> &[i64] {
        &self.by_model
    }

    /// Usage per day and product id: `[day * products + product]`.
    pub fn by_day_product(&self) -> &[i64] {
        &self.by_day_product
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::User;

    fn dir(emails: &[&str]) -> Directory {
        let mut d = Directory::new(&Default::default());
        for e in emails {
            d.push(User { email: (*e).into(), attrs: vec![] });
        }
        d
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(day_number(date("1970-01-01")), 0);
        assert_eq!(day_number(date("2026-11-27")), 20_784);
        assert_eq!(day_date(20_784), Some(date("2026-11-27")));
    }

    #[test]
    fn aggregates_period_users_caps_and_margins() {
        let d = dir(&["a@x", "b@x"]);
        let mut t = UsageTable::new(&d);
        let tenth: Credits = "0.1".parse().unwrap();
        for _ in 0..10 {
            t.push(date("2026-11-02"), "a@x", "codex", "gpt-5", tenth).unwrap();
        }
        t.push(date("2026-11-20"), "a@x", "chatgpt", "gpt-5-pro", Credits::from_whole(3)).unwrap();
        t.push(date("2026-10-31"), "a@x", "codex", "gpt-5", Credits::from_whole(100)).unwrap();
        t.push(date("2026-11-21"), "zed@x", "codex", "gpt-5", Credits::from_whole(7)).unwrap();
        let start = day_number(date("2026-11-01"));
        let spec = AggregateSpec {
            days: start..start + 30,
            recent_from: day_number(date("2026-11-15")),
            products: vec![t.product_id("codex").unwrap()],
            models: vec![t.model_id("gpt-5-pro").unwrap()],
        };
        let agg = t.aggregate(&spec);
        assert_eq!(agg.rows, 12);
        assert_eq!(agg.used(0), Credits::from_whole(4));
        assert_eq!(agg.recent(0), Credits::from_whole(3));
        assert_eq!(agg.product_used(0, 0), Credits::from_whole(1));
        assert_eq!(agg.model_used(0, 0), Credits::from_whole(3));
        assert_eq!(agg.used(1), Credits::ZERO);
        assert_eq!(agg.used(2), Credits::from_whole(7));
        assert_eq!(agg.by_day()[1], 1_000_000);
        assert_eq!(agg.by_product()[t.product_id("codex").unwrap() as usize], 8_000_000);
        assert_eq!(t.unknown_users()[0].email, "zed@x");
        let diags = t.unknown_user_diagnostics();
        assert_eq!(diags[0].code, Code::UsageUnknownUser);
        assert_eq!(diags[0].label.as_deref(), Some("1 row, 7 credits"));
        let daily = t.daily_for(spec.days.clone(), &[0]);
        assert_eq!(daily[0][19], 3_000_000);
    }

    #[test]
    fn the_day_a_budget_is_reached_does_not_depend_on_row_order() {
        let d = dir(&["a@x", "b@x", "c@x"]);
        let rows = [
            ("2026-11-02", "a@x", "codex", 3),
            ("2026-11-02", "b@x", "chatgpt", 1),
            ("2026-11-03", "a@x", "chatgpt", 2),
            ("2026-11-03", "a@x", "codex", 1),
            ("2026-11-05", "b@x", "codex", 9),
            ("2026-11-06", "a@x", "codex", 4),
            ("2026-11-06", "c@x", "codex", 2),
        ];
        let start = day_number(date("2026-11-01"));
        let spec = |t: &UsageTable| AggregateSpec {
            days: start..start + 30,
            recent_from: start + 4,
            products: vec![t.product_id("codex").unwrap()],
            models: vec![],
        };
        // a reaches 6 on the 3rd, b reaches 10 on the 5th, c never reaches 3.
        let budgets = [6_000_000, 10_000_000, 3_000_000];
        let mut results = Vec::new();
        for order in [[0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 6, 2, 4]] {
            let mut t = UsageTable::new(&d);
            for k in order {
                let (day, user, product, credits) = rows[k];
                t.push(date(day), user, product, "gpt-5", Credits::from_whole(credits)).unwrap();
            }
            let agg = t.aggregate_watching(&spec(&t), &budgets);
            let got: Vec<_> = (0..3)
                .map(|u| (agg.used(u), agg.recent(u), agg.product_used(u, 0), agg.reached_on(u)))
                .collect();
            results.push(got);
        }
        assert_eq!(results[0][0].3, Some(day_number(date("2026-11-03"))));
        assert_eq!(results[0][1].3, Some(day_number(date("2026-11-05"))));
        assert_eq!(results[0][2].3, None);
        assert_eq!(results[0][0].0, Credits::from_whole(10));
        assert_eq!(results[0][0].1, Credits::from_whole(4));
        assert_eq!(results[0][0].2, Credits::from_whole(8));
        assert_eq!(results[1], results[0]);
        assert_eq!(results[2], results[0]);
    }
}
