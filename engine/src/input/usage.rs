//! Reading usage: CSV, JSON Lines and pages of an OpenAI-style Costs API response.
//!
//! Every format yields rows of `date, user, product, model, credits` appended to a
//! [`UsageTable`]. CSV is the bulk format, so it has a byte-level fast path for
//! unquoted rows in the canonical column order (no allocation, no UTF-8
//! validation of fields that are only hashed); anything else — quoted fields,
//! other column orders, timestamps instead of dates — goes through the general
//! record reader. A bad row becomes a `usage/bad-row` diagnostic at `file:line`
//! and is skipped. JSON numbers are read from their exact text, never through a
//! float. A Costs API result takes its product and model from `product`/`model`
//! or from `line_item` (`"<product>, <model>"`), and is booked on the workspace
//! day holding most of its bucket.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

use super::{InputError, at, csv, extension, file_name, read_bytes, show};
use crate::Credits;
use crate::credits::{CreditsError, MAX_USAGE_AMOUNT, UsageAmountError};
use crate::diag::{Code, Diagnostic};
use crate::usage_table::{ContextKey, ContextValues, Shard, UsageTable, day_number};

/// The shape of a usage file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageFormat {
    /// A header `date,user,product,model,credits` (any order), one row per line.
    Csv,
    /// One JSON object per line with the same fields.
    JsonLines,
    /// One Costs API page (`{"object":"page",…}`) or a JSON array of pages.
    CostsApi,
}

impl UsageFormat {
    /// The format a path's extension implies: `.jsonl`/`.ndjson` JSON Lines, `.json`
    /// Costs API pages, anything else CSV.
    pub fn from_path(path: &Path) -> UsageFormat {
        match extension(path).as_str() {
            "jsonl" | "ndjson" => UsageFormat::JsonLines,
            "json" => UsageFormat::CostsApi,
            _ => UsageFormat::Csv,
        }
    }
}

/// Reads a usage file into `table`, the format chosen by extension; dates from
/// timestamps are taken in `tz`. Returns the bad rows as diagnostics.
pub fn read_usage(path: &Path, table: &mut UsageTable, tz: Tz) -> Result<Vec<Diagnostic>, InputError> {
    read_usage_parallel(path, table, tz, 1)
}

/// [`read_usage`] on up to `threads` threads (CSV and JSON Lines; Costs API pages
/// are read on one). The table and the diagnostics are exactly those of one thread.
pub fn read_usage_parallel(
    path: &Path,
    table: &mut UsageTable,
    tz: Tz,
    threads: usize,
) -> Result<Vec<Diagnostic>, InputError> {
    if UsageFormat::from_path(path) == UsageFormat::Csv {
        let mut ctx = Ctx { file: file_name(path), tz, out: Vec::new() };
        stream_csv(path, &mut ctx, table, BLOCK * threads.max(1), threads, MIN_CHUNK)?;
        return Ok(ctx.out);
    }
    let bytes = read_bytes(path)?;
    parse_usage_parallel(&file_name(path), &bytes, UsageFormat::from_path(path), table, tz, threads)
        .map_err(|reason| InputError::Format { path: path.to_path_buf(), reason })
}

/// Parses usage already read; `file` names it in diagnostics. Fails only when the
/// file as a whole cannot be interpreted (a CSV header without the needed columns,
/// a JSON document that is not a page), or when the table's rows together pass the
/// exact sum's range (each row is bounded, their number is not).
pub fn parse_usage(
    file: &Arc<str>,
    bytes: &[u8],
    format: UsageFormat,
    table: &mut UsageTable,
    tz: Tz,
) -> Result<Vec<Diagnostic>, String> {
    parse_usage_parallel(file, bytes, format, table, tz, 1)
}

/// [`parse_usage`] on up to `threads` threads, with the same result.
pub fn parse_usage_parallel(
    file: &Arc<str>,
    bytes: &[u8],
    format: UsageFormat,
    table: &mut UsageTable,
    tz: Tz,
    threads: usize,
) -> Result<Vec<Diagnostic>, String> {
    let mut ctx = Ctx { file: file.clone(), tz, out: Vec::new() };
    match format {
        UsageFormat::Csv => parse_csv(&mut ctx, bytes, table, threads, MIN_CHUNK)?,
        UsageFormat::JsonLines => parse_jsonl(&mut ctx, bytes, table, threads, MIN_CHUNK),
        UsageFormat::CostsApi => parse_costs(&mut ctx, bytes, table)?,
    }
    if table.total().is_none() {
        return Err(format!(
            "the usage adds up to more than {} credits, more than budgit sums exactly",
            Credits::from_micros(i64::MAX)
        ));
    }
    Ok(ctx.out)
}

struct Ctx {
    file: Arc<str>,
    tz: Tz,
    out: Vec<Diagnostic>,
}

impl Ctx {
    fn bad_row(&mut self, line: u32, column: u32, message: String) {
        self.out.push(
            Diagnostic::error(Code::UsageBadRow, message)
                .at(at(&self.file, line, column))
                .with_help("the row is skipped; fix the export, or pass `--strict` to fail on bad rows"),
        );
    }
}

/// The meaning of a CSV column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Date,
    User,
    Product,
    Model,
    Credits,
    /// `context.<key>`: a documented key's value ([`ContextKey`], by index).
    Context(u8),
    Ignored,
}

fn role_of(name: &str) -> Option<Role> {
    Some(match name {
        "date" | "day" => Role::Date,
        "user" | "user_id" | "email" => Role::User,
        "product" => Role::Product,
        "model" => Role::Model,
        "credits" | "amount" => Role::Credits,
        // Written by `budgit usage pull` for people and for re-pulls; not usage data.
        "id" | "project" => Role::Ignored,
        // Documented context keys are read; any other `context.*` column is accepted
        // and not broken down by.
        _ => match name.strip_prefix("context.") {
            Some(key) => ContextKey::ALL
                .iter()
                .position(|k| k.as_str() == key)
                .and_then(|i| u8::try_from(i).ok())
                .map_or(Role::Ignored, Role::Context),
            None => return None,
        },
    })
}

const CANONICAL: [Role; 5] = [Role::Date, Role::User, Role::Product, Role::Model, Role::Credits];

/// Parses `YYYY-MM-DD` exactly into a day number.
#[inline]
fn parse_ymd(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digit = |i: usize| -> Option<i32> {
        let c = b[i].wrapping_sub(b'0');
        (c < 10).then_some(i32::from(c))
    };
    let y = digit(0)? * 1000 + digit(1)? * 100 + digit(2)? * 10 + digit(3)?;
    let m = digit(5)? * 10 + digit(6)?;
    let d = digit(8)? * 10 + digit(9)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > dim {
        return None;
    }
    // Days from civil (H. Hinnant): exact for the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// A date or a timestamp as a day in `tz`.
fn parse_day(text: &[u8], tz: Tz) -> Result<i32, String> {
    if let Some(d) = parse_ymd(text) {
        return Ok(d);
    }
    let s = std::str::from_utf8(text).map_err(|_| "date is not valid UTF-8".to_string())?.trim();
    if let Some(d) = parse_ymd(s.as_bytes()) {
        return Ok(d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(day_number(t.with_timezone(&tz).date_naive()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(day_number(d));
    }
    Err(format!("`{}` is not a date (`YYYY-MM-DD`) or an RFC 3339 timestamp", show(text)))
}

/// Parses plain `digits[.digits]` with at most six decimals into micro-credits.
#[inline]
fn parse_micros_fast(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut whole: i64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        whole = whole * 10 + i64::from(b[i] - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac: i64 = 0;
    let mut digits = 0;
    if i < b.len() {
        if b[i] != b'.' {
            return None;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if digits == 6 {
                return None;
            }
            frac = frac * 10 + i64::from(b[i] - b'0');
            digits += 1;
            i += 1;
        }
        if i != b.len() {
            return None;
        }
    }
    const POW: [i64; 7] = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
    // Eighteen whole digits fit an i64 but not once scaled to micro-credits: such a
    // number takes the slow path, which reports it as too large.
    whole.checked_mul(1_000_000)?.checked_add(frac * POW[digits])
}

/// Credits from text: exact, at most six decimals, a usage amount
/// ([`Credits::usage_amount`], the rule the workspace service applies to events too).
fn parse_credits(text: &[u8]) -> Result<Credits, String> {
    let c = match parse_micros_fast(text) {
        Some(m) => Credits::from_micros(m),
        None => {
            let s = std::str::from_utf8(text).map_err(|_| "credits are not valid UTF-8".to_string())?;
            s.parse().map_err(|e: CreditsError| match e {
                CreditsError::NotANumber(_) if s.trim().is_empty() => "row has no credits".to_string(),
                CreditsError::NotANumber(_) => format!("credits `{}` are not a decimal number", show(text)),
                CreditsError::TooPrecise(_) => {
                    format!("credits `{}` have more than 6 decimal places", show(text))
                }
                CreditsError::TooLarge(_) => format!("credits `{}` are too large", show(text)),
            })?
        }
    };
    c.usage_amount().map_err(|e| match e {
        UsageAmountError::Negative(_) => format!("credits `{}` are negative", show(text)),
        UsageAmountError::TooLarge(_) => {
            format!("credits `{}` are more than the largest usage amount ({MAX_USAGE_AMOUNT})", show(text))
        }
    })
}

/// Adds one row of raw fields; returns the 0-based field that was bad, with why.
#[expect(clippy::too_many_arguments, reason = "the five fields of a row, kept as borrowed bytes")]
fn add_row(
    table: &mut UsageTable,
    ctx: &Ctx,
    (line, user_col): (u32, u32),
    date: &[u8],
    user: &[u8],
    product: &[u8],
    model: &[u8],
    credits: &[u8],
) -> Result<(), (Role, String)> {
    let day = parse_day(date, ctx.tz).map_err(|e| (Role::Date, e))?;
    let user = trim(user);
    if user.is_empty() {
        return Err((Role::User, "row has no user".to_string()));
    }
    let credits = parse_credits(credits).map_err(|e| (Role::Credits, e))?;
    let file = &ctx.file;
    let u = table.intern_user(user, || at(file, line, user_col)).map_err(|e| (Role::User, e.to_string()))?;
    let p = table.intern_product(trim(product)).map_err(|e| (Role::Product, e.to_string()))?;
    let m = table.intern_model(trim(model)).map_err(|e| (Role::Model, e.to_string()))?;
    table.push_ids(u, p, m, day, credits);
    Ok(())
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Column numbers of the fields of a row, for pointing at the bad one.
fn column_for(roles: &[Role], lens: &[usize], role: Role) -> u32 {
    let mut col = 1;
    for (r, len) in roles.iter().zip(lens) {
        if *r == role {
            break;
        }
        col += len + 1;
    }
    u32::try_from(col).unwrap_or(1)
}

fn parse_csv(
    ctx: &mut Ctx,
    bytes: &[u8],
    table: &mut UsageTable,
    threads: usize,
    min_chunk: usize,
) -> Result<(), String> {
    let Some(mut state) = CsvState::header(ctx, bytes)? else { return Ok(()) };
    table.reserve(bytes.len().saturating_sub(state.pos) / 48);
    let start = state.pos;
    let mut shards = Shards::new(threads, min_chunk);
    shards.rows(&mut state, ctx, bytes, start, true, table);
    Ok(())
}

/// The end of the complete lines of `bytes`: all of it at the end of the file.
fn complete(bytes: &[u8], eof: bool) -> usize {
    if eof { bytes.len() } else { memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1) }
}

/// The fewest bytes of CSV worth a thread of their own.
const MIN_CHUNK: usize = 1 << 20;

/// Parses CSV rows on several threads: the bytes are cut at line starts into one
/// chunk per thread, each chunk read into its own [`Shard`], and the shards merged
/// in file order, so the table and the findings are those of one pass.
///
/// A cut can fall inside a quoted field that holds a newline; the chunk before it
/// then reads on past the cut, and the chunk after it started mid-record. That
/// chunk's work is thrown away and it is read again here, on this thread, from
/// where the record before it really ended.
struct Shards {
    /// One per thread, made when a read first needs them (small files never do).
    shards: Vec<Shard>,
    threads: usize,
    min_chunk: usize,
    /// Time spent parsing chunks and merging shards, for the debug log.
    parse: std::time::Duration,
    merge: std::time::Duration,
}

/// What one chunk's parse found.
struct Chunk {
    start: usize,
    stop: usize,
    end: usize,
    /// Lines read, counting from 1 at `start`.
    line: u32,
    out: Vec<Diagnostic>,
}

impl Shards {
    fn new(threads: usize, min_chunk: usize) -> Shards {
        Shards {
            shards: Vec::new(),
            threads: threads.max(1),
            min_chunk: min_chunk.max(1),
            parse: std::time::Duration::ZERO,
            merge: std::time::Duration::ZERO,
        }
    }

    /// Parses the rows of `bytes` from `start` ([`CsvState::rows_until`]), on every
    /// thread; without `eof` only complete lines. Returns the bytes consumed.
    fn rows(
        &mut self,
        state: &mut CsvState,
        ctx: &mut Ctx,
        bytes: &[u8],
        start: usize,
        eof: bool,
        table: &mut UsageTable,
    ) -> usize {
        let bytes = &bytes[..complete(bytes, eof).max(start)];
        let cuts = cuts(bytes, start, self.threads, self.min_chunk);
        let started = std::time::Instant::now();
        if cuts.len() <= 2 {
            let end = state.rows_until(ctx, bytes, start, bytes.len(), eof, table);
            self.parse += started.elapsed();
            return end;
        }
        if self.shards.is_empty() {
            self.shards = (0..self.threads).map(|_| Shard::new(table)).collect();
        }
        let chunks: Vec<Chunk> = std::thread::scope(|scope| {
            let handles: Vec<_> = cuts
                .windows(2)
                .zip(self.shards.iter_mut())
                .map(|(w, shard)| {
                    let (chunk_start, stop) = (w[0], w[1]);
                    let mut local = CsvState {
                        roles: state.roles.clone(),
                        canonical: state.canonical,
                        pos: chunk_start,
                        line: 1,
                        cache: FastCache::default(),
                    };
                    let mut ctx = Ctx { file: ctx.file.clone(), tz: ctx.tz, out: Vec::new() };
                    scope.spawn(move || {
                        let end = local.rows_until(&mut ctx, bytes, chunk_start, stop, eof, &mut shard.table);
                        Chunk { start: chunk_start, stop, end, line: local.line, out: ctx.out }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect::<Result<_, _>>()
        })
        .unwrap_or_default();
        let parsed = std::time::Instant::now();
        self.parse += parsed - started;
        if chunks.len() + 1 != cuts.len() {
            // A chunk's thread died (it cannot, but then nothing of its work is trusted).
            for shard in &mut self.shards {
                *shard = Shard::new(table);
            }
            return state.rows_until(ctx, bytes, start, bytes.len(), eof, table);
        }
        // Accept the chunks that start where the one before ended, in order.
        let (mut pos, mut line) = (start, state.line);
        let mut pending: Vec<(usize, u32, Chunk)> = Vec::new();
        for (k, chunk) in chunks.into_iter().enumerate() {
            if chunk.start == pos {
                pos = chunk.end;
                let base = line;
                line = base.saturating_add(chunk.line.saturating_sub(1));
                pending.push((k, base, chunk));
                continue;
            }
            self.flush(&mut pending, state, ctx, bytes, eof, table);
            self.shards[k] = Shard::new(table);
            state.line = line;
            pos = state.rows_until(ctx, bytes, pos, chunk.stop, eof, table);
            line = state.line;
        }
        self.flush(&mut pending, state, ctx, bytes, eof, table);
        state.line = line;
        self.merge += parsed.elapsed();
        pos
    }

    /// Merges accepted chunks into `table` and takes their findings; if the table
    /// refuses them, reads their bytes again on this thread.
    fn flush(
        &mut self,
        pending: &mut Vec<(usize, u32, Chunk)>,
        state: &mut CsvState,
        ctx: &mut Ctx,
        bytes: &[u8],
        eof: bool,
        table: &mut UsageTable,
    ) {
        let (Some(first), Some(last)) = (pending.first(), pending.last()) else { return };
        let (from, from_line, to) = (first.2.start, first.1, last.2.end);
        let bases: Vec<u32> = pending.iter().map(|p| p.1).collect();
        let mut picked: Vec<&mut Shard> = Vec::with_capacity(pending.len());
        let mut next = pending.iter().map(|p| p.0).peekable();
        for (k, shard) in self.shards.iter_mut().enumerate() {
            if next.peek() == Some(&k) {
                next.next();
                picked.push(shard);
            }
        }
        if table.merge_shards(&mut picked, &bases).is_ok() {
            for (_, base, chunk) in pending.drain(..) {
                ctx.out.extend(chunk.out.into_iter().map(|mut d| {
                    if let Some(l) = d.location.as_mut() {
                        l.line = base.saturating_add(l.line.saturating_sub(1));
                    }
                    d
                }));
            }
            return;
        }
        for (k, _, _) in pending.drain(..) {
            self.shards[k] = Shard::new(table);
        }
        state.line = from_line;
        let end = state.rows_until(ctx, bytes, from, to, eof, table);
        debug_assert_eq!(end, to);
    }
}

/// Where to cut `bytes[start..]`: line starts, one chunk per thread at most and
/// none smaller than about `min_chunk` bytes.
fn cuts(bytes: &[u8], start: usize, threads: usize, min_chunk: usize) -> Vec<usize> {
    let len = bytes.len().saturating_sub(start);
    let n = threads.min(len / min_chunk.max(1)).max(1);
    let mut cuts = vec![start];
    for k in 1..n {
        let guess = start + len / n * k;
        let Some(at) = memchr::memchr(b'\n', &bytes[guess..]).map(|i| guess + i + 1) else { break };
        if at > cuts[cuts.len() - 1] && at < bytes.len() {
            cuts.push(at);
        }
    }
    cuts.push(bytes.len());
    cuts
}

/// Block size for streaming a CSV usage file.
const BLOCK: usize = 16 << 20;

/// A block of a CSV file as the reader hands it over: whole lines, the last one
/// included only at the end of the file.
type Block = std::io::Result<(Vec<u8>, bool)>;

/// Reads a CSV usage file block by block, so a multi-gigabyte export is never held
/// in memory whole; rows are parsed exactly as [`parse_csv`] parses them. A thread
/// of its own reads the next block while this one parses the last: reading a file
/// is a copy out of the page cache at best, and one thread doing both left the
/// parsers idle while it copied.
fn stream_csv(
    path: &Path,
    ctx: &mut Ctx,
    table: &mut UsageTable,
    block: usize,
    threads: usize,
    min_chunk: usize,
) -> Result<(), InputError> {
    let io = |source| InputError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    std::thread::scope(|scope| {
        // One block read ahead at most: memory stays about three blocks.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Block>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || read_blocks(file, block, &full_tx, &empty_rx));
        let mut state: Option<CsvState> = None;
        let mut shards = Shards::new(threads, min_chunk);
        // The bytes of the last block not parsed yet: a quoted record still open.
        let mut carry: Vec<u8> = Vec::new();
        // `full_rx` ends only after the block at the end of the file, or when the
        // reader failed (it sent the error) or died.
        for received in &full_rx {
            let (buf, eof) = received.map_err(io)?;
            let buf = if carry.is_empty() {
                buf
            } else {
                let mut joined = std::mem::take(&mut carry);
                joined.extend_from_slice(&buf);
                let _ = empty_tx.send(buf);
                joined
            };
            let start = match &state {
                Some(_) => 0,
                None => {
                    let format = |reason| InputError::Format { path: path.to_path_buf(), reason };
                    let Some(header) = CsvState::header(ctx, &buf).map_err(format)? else { return Ok(()) };
                    table.reserve(usize::try_from(size / 48).unwrap_or(0));
                    let pos = header.pos;
                    state = Some(header);
                    pos
                }
            };
            let Some(state) = state.as_mut() else { return Ok(()) };
            let consumed = shards.rows(state, ctx, &buf, start, eof, table);
            if eof {
                tracing::debug!(
                    parse_ms = shards.parse.as_millis(),
                    merge_ms = shards.merge.as_millis(),
                    rows = table.len(),
                    "read a CSV usage file"
                );
                return Ok(());
            }
            carry.extend_from_slice(&buf[consumed.min(buf.len())..]);
            let _ = empty_tx.send(buf);
        }
        Err(io(std::io::Error::other("the file's reader stopped before its end")))
    })
}

/// Reads `file` into blocks of about `block` bytes of whole lines (a line longer
/// than a block makes its block longer), reusing the buffers handed back, until
/// the end of the file or the receiver hangs up.
fn read_blocks(
    mut file: std::fs::File,
    block: usize,
    full: &std::sync::mpsc::SyncSender<Block>,
    empty: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    use std::io::Read;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let mut buf = empty.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&tail);
        tail.clear();
        let mut eof;
        let mut searched = buf.len();
        loop {
            let want = u64::try_from(block).unwrap_or(u64::MAX);
            match (&mut file).take(want).read_to_end(&mut buf) {
                // Fewer bytes than asked: `read_to_end` stopped at the end of the file.
                Ok(n) => eof = (n as u64) < want,
                Err(e) => {
                    let _ = full.send(Err(e));
                    return;
                }
            }
            if eof || memchr::memchr(b'\n', &buf[searched..]).is_some() {
                break;
            }
            searched = buf.len();
        }
        if !eof && let Some(i) = memchr::memrchr(b'\n', &buf) {
            tail.extend_from_slice(&buf[i + 1..]);
            buf.truncate(i + 1);
        }
        if full.send(Ok((buf, eof))).is_err() || eof {
            return;
        }
    }
}

/// Where a CSV parse stands: the columns, the next line, and the fast path's cache.
struct CsvState {
    roles: Vec<Role>,
    canonical: bool,
    pos: usize,
    line: u32,
    cache: FastCache,
}

impl CsvState {
    /// Reads the header; `None` for an empty file.
    fn header(ctx: &mut Ctx, bytes: &[u8]) -> Result<Option<CsvState>, String> {
        let mut reader = csv::Reader::new(bytes);
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        let header: Vec<String> = match reader.next_record(&mut fields) {
            None => return Ok(None),
            Some((_, Err(e))) => return Err(format!("header: {}", e.message())),
            Some((_, Ok(()))) => {
                fields.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase()).collect()
            }
        };
        let mut roles = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            match role_of(name) {
                Some(r) if r != Role::Ignored && roles.contains(&r) => {
                    return Err(format!("column `{name}` appears twice in the header"));
                }
                Some(r) => roles.push(r),
                None => {
                    let mut d =
                        Diagnostic::error(Code::UsageUnknownColumn, format!("unknown column `{name}`"))
                            .at(at(&ctx.file, 1, header_column(&header, i)))
                            .with_label("ignored");
                    let known = ["date", "user", "product", "model", "credits"];
                    d = match crate::diag::did_you_mean(name, known) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("usage columns are `date,user,product,model,credits`"),
                    };
                    ctx.out.push(d);
                    roles.push(Role::Ignored);
                }
            }
        }
        for (need, name) in [(Role::Date, "date"), (Role::User, "user"), (Role::Credits, "credits")] {
            if !roles.contains(&need) {
                return Err(format!(
                    "the header has no `{name}` column (expected `date,user,product,model,credits`)"
                ));
            }
        }
        Ok(Some(CsvState {
            canonical: roles == CANONICAL,
            roles,
            pos: reader.position(),
            line: reader.line(),
            cache: FastCache::default(),
        }))
    }

    /// Parses the rows of `bytes` (complete lines, [`complete`]) that start from
    /// `pos` and before `stop`; the last may run past `stop`, a quoted field holding
    /// newlines. Without `eof`, a quoted record still open at the end waits for
    /// more. Returns where the next record starts.
    fn rows_until(
        &mut self,
        ctx: &mut Ctx,
        bytes: &[u8],
        mut pos: usize,
        stop: usize,
        eof: bool,
        table: &mut UsageTable,
    ) -> usize {
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        while pos < stop {
            if self.canonical
                && let Some(next) = fast_row(bytes, pos, self.line, ctx, table, &mut self.cache)
            {
                pos = next;
                self.line += 1;
                continue;
            }
            let mut reader = csv::Reader::at(bytes, pos, self.line);
            let Some((row_line, result)) = reader.next_record(&mut fields) else {
                // Only blank lines were left: they still count as lines.
                pos = bytes.len();
                self.line = reader.line();
                break;
            };
            if !eof && result == Err(csv::CsvError::UnterminatedQuote) {
                // The record continues in the next block.
                break;
            }
            pos = reader.position();
            self.line = reader.line();
            if let Err(e) = result {
                ctx.bad_row(row_line, 1, e.message().to_string());
                continue;
            }
            general_row(ctx, table, row_line, &self.roles, &fields);
        }
        pos
    }
}

/// The 1-based column where header field `index` starts.
fn header_column(header: &[String], index: usize) -> u32 {
    let before: usize = header[..index].iter().map(|h| h.chars().count() + 1).sum();
    u32::try_from(before + 1).unwrap_or(1)
}

/// One row through the general path: any column order, quoted fields.
fn general_row(ctx: &mut Ctx, table: &mut UsageTable, line: u32, roles: &[Role], fields: &[Cow<'_, [u8]>]) {
    if fields.len() != roles.len() {
        let msg = if fields.len() > roles.len() {
            format!("row has {} fields but the header names {} columns", fields.len(), roles.len())
        } else {
            format!("row has {} fields, the header needs {}", fields.len(), roles.len())
        };
        ctx.bad_row(line, 1, msg);
        return;
    }
    let get = |role: Role| roles.iter().position(|r| *r == role).map_or(&b""[..], |i| &fields[i][..]);
    let (date, user, product, model, credits) =
        (get(Role::Date), get(Role::User), get(Role::Product), get(Role::Model), get(Role::Credits));
    let lens: Vec<usize> = fields.iter().map(|f| f.len()).collect();
    let user_col = column_for(roles, &lens, Role::User);
    if let Err((role, msg)) = add_row(table, ctx, (line, user_col), date, user, product, model, credits) {
        ctx.bad_row(line, column_for(roles, &lens, role), msg);
        return;
    }
    if roles.iter().any(|r| matches!(r, Role::Context(_))) {
        let mut values: ContextValues<'_> = [None; 3];
        for (role, f) in roles.iter().zip(fields) {
            if let Role::Context(k) = role
                && let Some(slot) = values.get_mut(usize::from(*k))
            {
                *slot = Some(trim(f)).filter(|v| !v.is_empty());
            }
        }
        if let Err(e) = table.push_context(values) {
            ctx.bad_row(line, 1, e.to_string());
        }
    }
}

/// The previous row's values, which bulk exports repeat from row to row.
#[derive(Default)]
struct FastCache {
    date: [u8; 10],
    day: Option<i32>,
    user: Vec<u8>,
    user_id: Option<u32>,
    product: Vec<u8>,
    product_id: Option<u16>,
    model: Vec<u8>,
    model_id: Option<u16>,
}

/// Finds the end of an unquoted field: the offset of the `,` after it, or `None`
/// when the field is quoted, unterminated or the row ends first.
#[inline]
fn field_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?;
    let i = memchr::memchr3(b',', b'\n', b'"', rest)?;
    (rest[i] == b',').then_some(start + i)
}

/// Parses one canonical, unquoted, well-formed row starting at `pos`; returns the start
/// of the next row, or `None` to let the general path handle (and report) this row.
#[inline]
fn fast_row(
    bytes: &[u8],
    pos: usize,
    line: u32,
    ctx: &Ctx,
    table: &mut UsageTable,
    cache: &mut FastCache,
) -> Option<usize> {
    // date: exactly ten bytes then a comma
    let date = bytes.get(pos..pos + 10)?;
    if bytes.get(pos + 10) != Some(&b',') {
        return None;
    }
    let day = if cache.day.is_some() && cache.date == date {
        cache.day?
    } else {
        let d = parse_ymd(date)?;
        cache.date.copy_from_slice(date);
        cache.day = Some(d);
        d
    };
    let u_start = pos + 11;
    let u_end = field_end(bytes, u_start)?;
    let p_end = field_end(bytes, u_end + 1)?;
    let m_end = field_end(bytes, p_end + 1)?;
    let c_start = m_end + 1;
    let (c_end, next) = match memchr::memchr3(b'\n', b',', b'"', &bytes[c_start..]) {
        Some(i) if bytes[c_start + i] == b'\n' => (c_start + i, c_start + i + 1),
        Some(_) => return None,
        None => (bytes.len(), bytes.len()),
    };
    let credits = bytes[c_start..c_end].strip_suffix(b"\r").unwrap_or(&bytes[c_start..c_end]);
    // past the largest usage amount: the general reader reports the row
    let micros = parse_micros_fast(credits).filter(|&m| m <= MAX_USAGE_AMOUNT.micros())?;
    let user = &bytes[u_start..u_end];
    let product = &bytes[u_end + 1..p_end];
    let model = &bytes[p_end + 1..m_end];
    // Padded users go to the general path, which trims all ASCII whitespace: a tab
    // kept here would make `\ta@x.com` a second person beside `a@x.com`.
    if user.first().is_none_or(u8::is_ascii_whitespace) || user.last().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let u = match cache.user_id {
        Some(id) if cache.user == user => id,
        _ => {
            let file = &ctx.file;
            let id = match cache.user_id.and_then(|last| table.next_directory_user(last, user)) {
                Some(id) => id,
                None => table.intern_user(user, || at(file, line, 12)).ok()?,
            };
            cache.user.clear();
            cache.user.extend_from_slice(user);
            cache.user_id = Some(id);
            id
        }
    };
    let p = match cache.product_id {
        Some(id) if cache.product == product => id,
        _ => {
            let id = table.intern_product(trim(product)).ok()?;
            cache.product.clear();
            cache.product.extend_from_slice(product);
            cache.product_id = Some(id);
            id
        }
    };
    let m = match cache.model_id {
        Some(id) if cache.model == model => id,
        _ => {
            let id = table.intern_model(trim(model)).ok()?;
            cache.model.clear();
            cache.model.extend_from_slice(model);
            cache.model_id = Some(id);
            id
        }
    };
    table.push_ids(u, p, m, day, Credits::from_micros(micros));
    Some(next)
}

/// A JSON field as bytes: strings as is, numbers as written.
fn json_text(value: Option<&serde_json::Value>) -> Result<Cow<'_, [u8]>, String> {
    use serde_json::Value;
    Ok(match value {
        None | Some(Value::Null) => Cow::Borrowed(&b""[..]),
        Some(Value::String(s)) => Cow::Borrowed(s.as_bytes()),
        Some(Value::Number(n)) => Cow::Owned(json_number_text(n).into_bytes()),
        Some(other) => {
            return Err(format!("`{}` is not a string or a number", show(other.to_string().as_bytes())));
        }
    })
}

/// A JSON number as exact decimal text: numbers keep the text they were written
/// with (`0.1` stays `0.1`, `9007199254.740993` is not rounded through a float).
fn json_number_text(n: &serde_json::Number) -> String {
    n.as_str().to_string()
}

const JSONL_FIELDS: [&str; 11] = [
    "date",
    "day",
    "user",
    "user_id",
    "email",
    "product",
    "model",
    "credits",
    "amount",
    "timestamp",
    "context",
];

/// The documented keys of a JSON `context` object, as bytes; other keys are kept out.
fn json_context(value: Option<&serde_json::Value>) -> Result<[Option<Cow<'_, [u8]>>; 3], String> {
    let mut out = [None, None, None];
    let obj = match value {
        None | Some(serde_json::Value::Null) => return Ok(out),
        Some(serde_json::Value::Object(obj)) => obj,
        Some(_) => return Err("`context` must be a JSON object".to_string()),
    };
    for (slot, key) in out.iter_mut().zip(ContextKey::ALL) {
        let text = json_text(obj.get(key.as_str())).map_err(|e| format!("context.{} {e}", key.as_str()))?;
        *slot = Some(text).filter(|t| !t.trim_ascii().is_empty());
    }
    Ok(out)
}

/// Reads JSON Lines on up to `threads` threads: cut at line starts, each chunk
/// read into its own [`Shard`], merged in order (a line never spans a cut).
fn parse_jsonl(ctx: &mut Ctx, bytes: &[u8], table: &mut UsageTable, threads: usize, min_chunk: usize) {
    let cuts = cuts(bytes, 0, threads, min_chunk);
    if cuts.len() <= 2 {
        return jsonl_lines(ctx, bytes, 1, table);
    }
    let mut shards: Vec<Shard> = (2..=cuts.len()).map(|_| Shard::new(table)).collect();
    let mut line = 1u32;
    let mut firsts = Vec::with_capacity(cuts.len());
    for w in cuts.windows(2) {
        firsts.push(line);
        let lines = memchr::memchr_iter(b'\n', &bytes[w[0]..w[1]]).count();
        line = line.saturating_add(u32::try_from(lines).unwrap_or(u32::MAX));
    }
    let outs: Option<Vec<Vec<Diagnostic>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cuts
            .windows(2)
            .zip(shards.iter_mut())
            .zip(&firsts)
            .map(|((w, shard), &first)| {
                let mut ctx = Ctx { file: ctx.file.clone(), tz: ctx.tz, out: Vec::new() };
                let chunk = &bytes[w[0]..w[1]];
                scope.spawn(move || {
                    jsonl_lines(&mut ctx, chunk, first, &mut shard.table);
                    ctx.out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    let mut picked: Vec<&mut Shard> = shards.iter_mut().take(firsts.len()).collect();
    // Lines are already the file's: every shard starts at line 1 of its own count.
    let ones = vec![1; picked.len()];
    match outs {
        Some(outs) if table.merge_shards(&mut picked, &ones).is_ok() => {
            ctx.out.extend(outs.into_iter().flatten())
        }
        _ => jsonl_lines(ctx, bytes, 1, table),
    }
}

/// Reads JSON Lines whose first line is line `first` of the file.
fn jsonl_lines(ctx: &mut Ctx, bytes: &[u8], first: u32, table: &mut UsageTable) {
    for (index, raw) in bytes.split(|&c| c == b'\n').enumerate() {
        let line = first.saturating_add(u32::try_from(index).unwrap_or(u32::MAX));
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                ctx.bad_row(line, u32::try_from(e.column()).unwrap_or(1), format!("not JSON: {e}"));
                continue;
            }
        };
        let Some(obj) = value.as_object() else {
            ctx.bad_row(line, 1, "expected a JSON object".to_string());
            continue;
        };
        if let Some(key) = obj.keys().find(|k| !JSONL_FIELDS.contains(&k.as_str())) {
            let mut msg = format!("unknown field `{key}`");
            if let Some(s) = crate::diag::did_you_mean(key, ["date", "user", "product", "model", "credits"]) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            ctx.bad_row(line, 1, msg);
            continue;
        }
        let pick = |names: &[&str]| names.iter().find_map(|n| obj.get(*n));
        let date = match pick(&["date", "day", "timestamp"]) {
            Some(serde_json::Value::Number(n)) => {
                match n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)) {
                    Some(t) => Cow::Owned(t.to_rfc3339().into_bytes()),
                    None => {
                        ctx.bad_row(line, 1, format!("`{n}` is not a unix timestamp"));
                        continue;
                    }
                }
            }
            other => match json_text(other) {
                Ok(t) => t,
                Err(e) => {
                    ctx.bad_row(line, 1, format!("date {e}"));
                    continue;
                }
            },
        };
        let fields = (
            json_text(pick(&["user", "user_id", "email"])),
            json_text(obj.get("product")),
            json_text(obj.get("model")),
            json_text(pick(&["credits", "amount"])),
        );
        let (user, product, model, credits) = match fields {
            (Ok(u), Ok(p), Ok(m), Ok(c)) => (u, p, m, c),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                ctx.bad_row(line, 1, e);
                continue;
            }
        };
        if date.is_empty() {
            ctx.bad_row(line, 1, "row has no date".to_string());
            continue;
        }
        let context = match json_context(obj.get("context")) {
            Ok(c) => c,
            Err(e) => {
                ctx.bad_row(line, 1, e);
                continue;
            }
        };
        if let Err((_, msg)) = add_row(table, ctx, (line, 1), &date, &user, &product, &model, &credits) {
            ctx.bad_row(line, 1, msg);
            continue;
        }
        let values: ContextValues<'_> = [0, 1, 2].map(|k| context[k].as_deref().map(trim));
        if let Err(e) = table.push_context(values) {
            ctx.bad_row(line, 1, e.to_string());
        }
    }
}

/// Byte offsets of every object directly inside a `results` array, in document order.
/// A small structural scan: serde_json's values carry no positions.
fn result_offsets(bytes: &[u8]) -> Vec<usize> {
    #[derive(PartialEq)]
    enum Frame {
        Object,
        Array { results: bool },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    let mut last_string: (usize, usize) = (0, 0);
    let mut key_for_next = false;
    let mut pending_key: &[u8] = b"";
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                last_string = (start, i.min(bytes.len()));
            }
            b':' => {
                pending_key = &bytes[last_string.0..last_string.1];
                key_for_next = true;
            }
            b'{' => {
                if matches!(stack.last(), Some(Frame::Array { results: true })) {
                    out.push(i);
                }
                stack.push(Frame::Object);
                key_for_next = false;
            }
            b'[' => {
                let results = key_for_next && pending_key == b"results";
                stack.push(Frame::Array { results });
                key_for_next = false;
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => key_for_next = false,
            _ => {}
        }
        i += 1;
    }
    out
}

/// The day, in the workspace time zone, a Costs API bucket is booked on: the day
/// that holds most of it, which is the day of its midpoint. A daily bucket cut at
/// UTC midnights is one calendar day in UTC; in `America/New_York` it runs from
/// 19:00 to 19:00, and dating it by its start would move every bucket (and the
/// first bucket of a period, into the previous period) back a day.
pub(crate) fn bucket_day(
    start: DateTime<chrono::Utc>,
    end: Option<DateTime<chrono::Utc>>,
    tz: Tz,
) -> (i32, bool) {
    let end = end.filter(|e| *e > start).unwrap_or(start + chrono::TimeDelta::days(1));
    let mid = start + (end - start) / 2;
    let day = day_number(mid.with_timezone(&tz).date_naive());
    // The bucket's last instant is just before `end`.
    let last = end - chrono::TimeDelta::seconds(1);
    let spans = day_number(start.with_timezone(&tz).date_naive()) != day
        || day_number(last.with_timezone(&tz).date_naive()) != day;
    (day, spans)
}

/// A result's product (`None` when unknown) and model, as bytes.
pub(crate) type ProductModel<'a> = (Option<Cow<'a, [u8]>>, Cow<'a, [u8]>);

/// Product and model of a Costs API result: `product` and `model` when present,
/// else read from `line_item`, which budgit's own Costs API writes as
/// `"<product>, <model>"` when grouped by `line_item`. `Ok(None)` for the product
/// when neither says.
pub(crate) fn costs_product_model(result: &serde_json::Value) -> Result<ProductModel<'_>, String> {
    let product = json_text(result.get("product"))?;
    let model = json_text(result.get("model"))?;
    let line_item = json_text(result.get("line_item"))?;
    let (item_product, item_model) =
        match std::str::from_utf8(&line_item).ok().and_then(|l| l.split_once(", ")) {
            Some((p, m)) => (p.trim().as_bytes(), m.trim().as_bytes()),
            None => (trim(&line_item), &b""[..]),
        };
    let product = if !trim(&product).is_empty() {
        Some(product)
    } else if !item_product.is_empty() {
        Some(Cow::Owned(item_product.to_vec()))
    } else {
        None
    };
    let model = if trim(&model).is_empty() && !item_model.is_empty() {
        Cow::Owned(item_model.to_vec())
    } else {
        model
    };
    Ok((product, model))
}

fn parse_costs(ctx: &mut Ctx, bytes: &[u8], table: &mut UsageTable) -> Result<(), String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let pages: Vec<&Value> = match &doc {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&doc],
        _ => return Err("expected a Costs API page or an array of pages".to_string()),
    };
    let offsets = result_offsets(bytes);
    let mut lines = LineIndex::new(bytes);
    let mut k = 0usize;
    // Buckets that cross a midnight of the workspace time zone: (count, first, its line).
    let mut spanning: (usize, Option<(DateTime<chrono::Utc>, u32)>) = (0, None);
    for (pi, page) in pages.iter().enumerate() {
        let Some(data) = page.get("data").and_then(Value::as_array) else {
            return Err(format!(
                "page {} has no `data` array (expected `{{\"object\":\"page\",\"data\":[…]}}`)",
                pi + 1
            ));
        };
        for bucket in data {
            let start =
                bucket.get("start_time").and_then(Value::as_i64).and_then(|s| DateTime::from_timestamp(s, 0));
            let end =
                bucket.get("end_time").and_then(Value::as_i64).and_then(|s| DateTime::from_timestamp(s, 0));
            let results =
                bucket.get("results").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let mut counted = false;
            for result in results {
                let line = offsets.get(k).map_or(1, |&o| lines.line_of(o));
                k += 1;
                let Some(start) = start else {
                    ctx.bad_row(line, 1, "the bucket has no valid `start_time`".to_string());
                    continue;
                };
                let (day, spans) = bucket_day(start, end, ctx.tz);
                if spans && !counted {
                    counted = true;
                    spanning.0 += 1;
                    spanning.1.get_or_insert((start, line));
                }
                let amount = result.get("amount").and_then(|a| a.get("value"));
                let credits = match amount {
                    Some(Value::Number(n)) => json_number_text(n),
                    Some(Value::String(s)) => s.clone(),
                    _ => {
                        ctx.bad_row(line, 1, "result has no `amount.value`".to_string());
                        continue;
                    }
                };
                let user =
                    result.get("user_id").or_else(|| result.get("user")).or_else(|| result.get("email"));
                let (user, (product, model)) = match (json_text(user), costs_product_model(result)) {
                    (Ok(u), Ok(pm)) => (u, pm),
                    (Err(e), _) | (_, Err(e)) => {
                        ctx.bad_row(line, 1, e);
                        continue;
                    }
                };
                let date = crate::usage_table::day_date(day).map(|d| d.to_string()).unwrap_or_default();
                let product_known = product.is_some();
                let product = product.unwrap_or(Cow::Borrowed(&b""[..]));
                match add_row(table, ctx, (line, 1), date.as_bytes(), &user, &product, &model, credits.as_bytes()) {
                    Err((_, msg)) => ctx.bad_row(line, 1, msg),
                    Ok(()) if !product_known => ctx.out.push(
                        Diagnostic::warning(
                            Code::UsageNoProduct,
                            format!(
                                "the product of `{}`'s {} credits is unknown: the result has no `product` or `line_item`",
                                show(trim(&user)),
                                show(credits.as_bytes())
                            ),
                        )
                        .at(at(&ctx.file, line, 1))
                        .with_help(
                            "the credits count toward the user's total and pools but toward no product cap; \
                             export the Costs API grouped by `user_id` and `line_item`",
                        ),
                    ),
                    Ok(()) => {}
                }
            }
        }
    }
    if let (n, Some((first, line))) = spanning {
        ctx.out.push(
            Diagnostic::warning(
                Code::UsageBucketSpansDays,
                format!(
                    "{n} {} a midnight in `{}`, the first from `{}`",
                    if n == 1 { "bucket crosses" } else { "buckets cross" },
                    ctx.tz.name(),
                    first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            )
            .at(at(&ctx.file, line, 1))
            .with_label("dated by the day holding most of it")
            .with_help(
                "each bucket is booked on the workspace day that holds most of it (the day of its midpoint); \
                 request buckets at the workspace's midnights to date usage exactly",
            ),
        );
    }
    Ok(())
}

/// Maps increasing byte offsets to 1-based lines.
struct LineIndex<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineIndex { bytes, pos: 0, line: 1 }
    }

    fn line_of(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.bytes.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        let newlines = memchr::memchr_iter(b'\n', &self.bytes[self.pos..offset]).count();
        self.line = self.line.saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        self.pos = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Directory, User};

    fn table() -> UsageTable {
        let mut d = Directory::new(&Default::default());
        d.push(User { email: "a@x.com".into(), attrs: vec![] });
        d.push(User { email: "b@x.com".into(), attrs: vec![] });
        UsageTable::new(&d)
    }

    fn codes(d: &[Diagnostic]) -> Vec<(u32, u32, String)> {
        d.iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                (l.line, l.column, d.message.clone())
            })
            .collect()
    }

    #[test]
    fn usage_past_the_exact_sum_is_refused_not_wrapped() {
        let mut t = table();
        // A table already holding nearly the largest exact sum; one more credit passes it.
        // (Rows read from files are bounded one by one; their count is not.)
        t.push_ids(0, 0, 0, 0, Credits::from_micros(i64::MAX - 5));
        assert!(t.total().is_some());
        let csv = b"date,user,product,model,credits\n2026-11-02,b@x.com,codex,m,1\n";
        let file: Arc<str> = "usage.csv".into();
        let err = parse_usage(&file, csv, UsageFormat::Csv, &mut t, chrono_tz::UTC).unwrap_err();
        assert!(err.contains("more than budgit sums exactly"), "{err}");
        assert_eq!(t.total(), None);
    }

    #[test]
    fn ymd_matches_chrono() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-27", "1969-12-31", "2100-03-01"] {
            let d: NaiveDate = s.parse().unwrap();
            assert_eq!(parse_ymd(s.as_bytes()), Some(day_number(d)), "{s}");
        }
        assert_eq!(parse_ymd(b"2026-02-29"), None);
        assert_eq!(parse_ymd(b"2026-13-01"), None);
    }

    #[test]
    fn fast_credits_are_exact_and_strict() {
        assert_eq!(parse_micros_fast(b"0.1"), Some(100_000));
        assert_eq!(parse_micros_fast(b"12"), Some(12_000_000));
        assert_eq!(parse_micros_fast(b"1.000001"), Some(1_000_001));
        assert_eq!(parse_micros_fast(b"1.0000001"), None);
        assert_eq!(parse_micros_fast(b"-1"), None);
        // Found by fuzzing: eighteen digits overflowed when scaled to micro-credits.
        assert_eq!(parse_micros_fast(b"999999999999999999"), None);
        assert!(parse_credits(b"999999999999999999").unwrap_err().contains("too large"));
        assert_eq!(parse_credits(b"1e2"), Ok(Credits::from_whole(100)));
        assert!(parse_credits(b"-1").unwrap_err().contains("negative"));
        assert!(parse_credits(b"0.0000001").unwrap_err().contains("more than 6 decimal places"));
        assert!(parse_credits(b"abc").unwrap_err().contains("not a decimal number"));
    }

    #[test]
    fn a_user_padded_with_tabs_is_the_same_user() {
        let text = "date,user,product,model,credits\n2026-11-02,a@x.com,p,m,2\n\
                    2026-11-02,\ta@x.com,p,m,1\n2026-11-02,b@x.com\t,p,m,1\n";
        let mut t = table();
        let out =
            parse_usage(&Arc::from("u.csv"), text.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.user, vec![0, 0, 1]);
        assert!(t.unknown_users().is_empty());
    }

    #[test]
    fn the_id_and_project_columns_of_a_pulled_file_are_read_without_findings() {
        let text = "date,user,product,model,credits,project,id\n\
                    2026-11-01,a@x.com,gpt-5,input,12.5,proj_app,openai:1793491200:0123456789abcdef\n\
                    2026-11-01,b@x.com,gpt-5,\"in, out\",1,,openai:1793491200:fedcba9876543210\n";
        let mut t = table();
        let out =
            parse_usage(&Arc::from("u.csv"), text.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.user, vec![0, 1]);
        assert_eq!(t.micros, vec![12_500_000, 1_000_000]);
    }

    #[test]
    fn csv_fast_and_general_paths_agree_and_report_bad_rows() {
        let text = "date,user,product,model,credits\n\
                    2026-11-01,a@x.com,codex,gpt-5,0.1\n\
                    2026-11-01,a@x.com,codex,gpt-5,0.1\r\n\
                    2026-11-01,\"b@x.com\",chatgpt,\"gpt, 5\",2\n\
                    2026-11-31,a@x.com,codex,gpt-5,1\n\
                    2026-11-02,,codex,gpt-5,1\n\
                    2026-11-02,a@x.com,codex,gpt-5,-1\n\
                    2026-11-02,a@x.com,codex,gpt-5,1.1234567\n\
                    2026-11-02,a@x.com,codex,gpt-5,lots\n\
                    2026-11-02,a@x.com,codex,gpt-5,1,extra\n\
                    2026-11-02T23:30:00-05:00,zed@x.com,codex,gpt-5,4";
        let mut t = table();
        let diags = parse_usage(&"u.csv".into(), text.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.micros.iter().sum::<i64>(), 6_200_000);
        assert_eq!(t.models(), ["gpt-5", "gpt, 5"]);
        assert_eq!(t.user, vec![0, 0, 1, 2]);
        // the timestamp is read in the workspace timezone (UTC here: the next day)
        assert_eq!(t.day[3], day_number("2026-11-03".parse().unwrap()));
        let got = codes(&diags);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(got[0].1, 1);
        assert!(got[0].2.contains("`2026-11-31` is not a date"));
        assert_eq!(got[1].2, "row has no user");
        assert_eq!(got[2].1, 32, "points at the credits column");
        assert!(got[5].2.contains("6 fields"));
        assert_eq!(t.unknown_users()[0].first.line, 11);
    }

    #[test]
    fn every_spelling_of_a_user_counts_against_them_and_hidden_characters_are_refused() {
        let csv = "date,user,product,model,credits\n\
                   2026-11-01,A@x.com,codex,gpt-5,1\n\
                   2026-11-01,\" a@X.COM \",codex,gpt-5,2\n\
                   2026-11-01,a@x.com,codex,gpt-5,4\n\
                   2026-11-01,a\u{200B}@x.com,codex,gpt-5,8\n\
                   2026-11-01,Zed@x.com,codex,gpt-5,16\n\
                   2026-11-01,zed@x.com,codex,gpt-5,32\n";
        let mut t = table();
        let diags = parse_usage(&"u.csv".into(), csv.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        assert_eq!(t.user, vec![0, 0, 0, 2, 2]);
        assert_eq!(t.micros, vec![1_000_000, 2_000_000, 4_000_000, 16_000_000, 32_000_000]);
        assert_eq!(t.unknown_users().iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["zed@x.com"]);
        let got = codes(&diags);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (5, 12));
        assert_eq!(got[0].2, "the user contains a zero-width character, U+200B, which cannot be seen");

        let jsonl = "{\"date\":\"2026-11-01\",\"user\":\"B@X.com\",\"product\":\"codex\",\"credits\":1}\n\
                     {\"date\":\"2026-11-01\",\"user\":\"b@x.com\\u202e\",\"product\":\"codex\",\"credits\":1}\n";
        let mut t = table();
        let diags = parse_usage(&"u.jsonl".into(), jsonl.as_bytes(), UsageFormat::JsonLines, &mut t, Tz::UTC)
            .unwrap();
        assert_eq!(t.user, vec![1]);
        assert!(codes(&diags)[0].2.contains("a bidirectional control character, U+202E"), "{diags:?}");
    }

    #[test]
    fn streaming_in_tiny_blocks_reads_what_parsing_in_one_piece_reads() {
        let text = "date,user,product,model,credits\n\
                    2026-11-01,a@x.com,codex,gpt-5,0.1\n\
                    2026-11-01,b@x.com,codex,\"multi\nline, model\",2\n\
                    2026-11-31,a@x.com,codex,gpt-5,1\n\
                    \n\
                    2026-11-02,zed@x.com,chatgpt,gpt-5,3\n\
                    2026-11-02,\"a@x.com,codex,gpt-5,1\n\
                    2026-11-03,a@x.com,codex,gpt-5,4";
        let mut whole = table();
        let want =
            parse_usage(&"u.csv".into(), text.as_bytes(), UsageFormat::Csv, &mut whole, Tz::UTC).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.csv");
        std::fs::write(&path, text).unwrap();
        for block in [1, 3, 7, 64, 1 << 20] {
            let mut t = table();
            let mut ctx = Ctx { file: "u.csv".into(), tz: Tz::UTC, out: Vec::new() };
            stream_csv(&path, &mut ctx, &mut t, block, 1, 1).unwrap();
            assert_eq!(codes(&ctx.out), codes(&want), "block {block}");
            assert_eq!(
                (&t.user, &t.model, &t.micros, &t.day),
                (&whole.user, &whole.model, &whole.micros, &whole.day)
            );
            assert_eq!(t.models(), whole.models(), "block {block}");
        }
        assert_eq!(whole.len(), 4);
        assert_eq!(whole.models(), ["gpt-5", "multi\nline, model"]);
    }

    #[test]
    fn users_looked_up_ahead_in_directory_order_get_the_ids_interning_gives() {
        let mut d = Directory::new(&Default::default());
        for k in 0..12 {
            d.push(User { email: format!("u{k}@x.com"), attrs: vec![] });
        }
        // In order with gaps (within and past the look-ahead), backwards, a spelling
        // of a known user, an unknown user, and users again after it.
        let order: [u32; 16] = [0, 1, 2, 4, 9, 10, 11, 3, 2, 1, 5, 6, 7, 8, 0, 11];
        let mut text = String::from("date,user,product,model,credits\n");
        for (i, &k) in order.iter().enumerate() {
            text.push_str(&format!("2026-11-01,u{k}@x.com,codex,gpt-5,{i}\n"));
            if i == 5 {
                text.push_str("2026-11-01,U7@X.com,codex,gpt-5,1\n2026-11-01,new@x.com,codex,gpt-5,1\n");
            }
        }
        let mut t = UsageTable::new(&d);
        parse_usage(&"u.csv".into(), text.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        let mut want = order.to_vec();
        want.splice(6..6, [7, 12]);
        assert_eq!(t.user, want);
        let mut fresh = UsageTable::new(&d);
        for email in ["u3@x.com", "u0@x.com"] {
            assert_eq!(
                fresh.next_directory_user(0, email.as_bytes()),
                fresh
                    .intern_user(email.as_bytes(), || at(&"u".into(), 1, 1))
                    .ok()
                    .filter(|&id| id > 0 && id <= 4)
            );
        }
        assert_eq!(fresh.next_directory_user(11, b"u11@x.com"), None);
        assert_eq!(fresh.next_directory_user(u32::MAX, b"u0@x.com"), None);
    }

    #[test]
    fn the_reader_hands_over_whole_lines_and_all_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(100);
        for text in
            ["", "no newline at all", "a\nbb\n", "a\nbb\nlast without newline", &format!("a\n{long}\nb\n")]
        {
            let path = dir.path().join("u.csv");
            std::fs::write(&path, text).unwrap();
            for block in [1, 2, 7, 64, 1 << 20] {
                let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Block>(1);
                let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
                let file = std::fs::File::open(&path).unwrap();
                let reader = std::thread::spawn(move || read_blocks(file, block, &full_tx, &empty_rx));
                let mut got = Vec::new();
                let mut ends = 0;
                for received in &full_rx {
                    let (buf, eof) = received.unwrap();
                    if eof {
                        ends += 1;
                    } else {
                        // Every block but the last ends a line: no row is cut in two.
                        assert_eq!(buf.last(), Some(&b'\n'), "{text:?} in blocks of {block}");
                    }
                    got.extend_from_slice(&buf);
                    // A buffer handed back is reused for a later block.
                    let _ = empty_tx.send(buf);
                }
                reader.join().unwrap();
                assert_eq!(ends, 1, "{text:?} in blocks of {block}");
                assert_eq!(String::from_utf8(got).unwrap(), text, "blocks of {block}");
            }
        }
    }

    #[test]
    fn csv_header_must_name_the_needed_columns() {
        let mut t = table();
        let err = parse_usage(&"u.csv".into(), b"day,who,credits\n", UsageFormat::Csv, &mut t, Tz::UTC);
        assert!(err.unwrap_err().contains("no `user` column"));
        let diags =
            parse_usage(&"u.csv".into(), b"date,user,credit,credits\n", UsageFormat::Csv, &mut t, Tz::UTC)
                .unwrap();
        assert_eq!(diags[0].code, Code::UsageUnknownColumn);
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `credits`?"));
        // an empty file is no usage, not an error
        assert!(parse_usage(&"u.csv".into(), b"", UsageFormat::Csv, &mut t, Tz::UTC).unwrap().is_empty());
    }

    #[test]
    fn jsonl_rows() {
        let text = "{\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"product\":\"codex\",\"model\":\"m\",\"credits\":0.1}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"product\":\"codex\",\"credit\":1}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"product\":\"codex\",\"credits\":\"2.5\"}\n";
        let mut t = table();
        let diags =
            parse_usage(&"u.jsonl".into(), text.as_bytes(), UsageFormat::JsonLines, &mut t, Tz::UTC).unwrap();
        assert_eq!(t.micros, vec![100_000, 2_500_000]);
        assert_eq!(codes(&diags)[0].0, 2);
        assert!(diags[0].message.contains("did you mean `credits`"));
    }

    /// Resident memory of this process in KiB (Linux), from `/proc/self/status`.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_huge_exponent_or_amount_is_a_finding_not_an_allocation() {
        let text = "date,user,product,model,credits\n\
                    2026-11-01,a@x.com,codex,m,1e2000000000\n\
                    2026-11-01,a@x.com,codex,m,1000000.000001\n\
                    2026-11-01,a@x.com,codex,m,1000000\n";
        let mut t = table();
        let before = rss_kib();
        let started = std::time::Instant::now();
        let diags = parse_usage(&"u.csv".into(), text.as_bytes(), UsageFormat::Csv, &mut t, Tz::UTC).unwrap();
        let took = started.elapsed();
        let grew = rss_kib().saturating_sub(before);
        assert_eq!(
            codes(&diags),
            vec![
                (2, 28, "credits `1e2000000000` are too large".to_string()),
                (
                    3,
                    28,
                    "credits `1000000.000001` are more than the largest usage amount (1000000)".to_string()
                ),
            ]
        );
        assert_eq!(t.micros, vec![1_000_000_000_000]);
        assert!(took < std::time::Duration::from_millis(10), "{took:?}");
        assert!(grew < 10 * 1024, "resident memory grew by {grew} KiB");
    }

    #[test]
    fn costs_api_pages_with_lines() {
        let text = r#"[{"object": "page", "data": [
  {"object": "bucket", "start_time": 1764547200, "end_time": 1764633600, "results": [
    {"object": "organization.costs.result", "amount": {"value": 0.25, "currency": "credits"},
     "user_id": "a@x.com", "product": "codex", "model": "gpt-5"},
    {"object": "organization.costs.result", "amount": {"value": -3, "currency": "credits"},
     "user_id": "a@x.com", "product": "codex", "model": "gpt-5"}
  ]}], "has_more": true, "next_page": "p2"},
 {"object": "page", "data": [
  {"object": "bucket", "start_time": 1764633600, "end_time": 1764720000, "results": [
    {"object": "organization.costs.result", "amount": {"value": 1, "currency": "credits"}, "user": "b@x.com", "product": "chatgpt"}
  ]}], "has_more": false, "next_page": null}]"#;
        let mut t = table();
        let tz: Tz = "America/New_York".parse().unwrap();
        let diags =
            parse_usage(&"c.json".into(), text.as_bytes(), UsageFormat::CostsApi, &mut t, tz).unwrap();
        assert_eq!(t.micros, vec![250_000, 1_000_000]);
        // the bucket 2025-12-01T00:00Z to 2025-12-02T00:00Z runs from 19:00 on November
        // 30th to 19:00 on December 1st in New York: booked on the day holding most of it
        assert_eq!(t.day[0], day_number("2025-12-01".parse().unwrap()));
        assert_eq!(t.day[1], day_number("2025-12-02".parse().unwrap()));
        assert_eq!(t.models(), ["gpt-5", ""]);
        let got = codes(&diags);
        assert_eq!(got[0], (5, 1, "credits `-3` are negative".to_string()));
        assert_eq!(
            got[1],
            (
                3,
                1,
                "2 buckets cross a midnight in `America/New_York`, the first from `2025-12-01T00:00:00Z`"
                    .to_string()
            )
        );
        assert_eq!(diags[1].code, Code::UsageBucketSpansDays);
        assert_eq!(diags[1].severity, crate::diag::Severity::Warning);
        // in UTC the same buckets are whole days: nothing to report
        let mut t = table();
        let diags =
            parse_usage(&"c.json".into(), text.as_bytes(), UsageFormat::CostsApi, &mut t, Tz::UTC).unwrap();
        assert_eq!(t.day[0], day_number("2025-12-01".parse().unwrap()));
        assert!(diags.iter().all(|d| d.code != Code::UsageBucketSpansDays));
    }

    #[test]
    fn costs_buckets_are_dated_by_the_day_holding_most_of_them() {
        let day = |start: &str, end: Option<&str>, tz: &str| {
            let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
            let (d, spans) = bucket_day(t(start), end.map(t), tz.parse().unwrap());
            (crate::usage_table::day_date(d).unwrap().to_string(), spans)
        };
        let utc_day = ("2026-11-01T00:00:00Z", Some("2026-11-02T00:00:00Z"));
        assert_eq!(day(utc_day.0, utc_day.1, "UTC"), ("2026-11-01".into(), false));
        assert_eq!(day(utc_day.0, utc_day.1, "America/New_York"), ("2026-11-01".into(), true));
        assert_eq!(day(utc_day.0, utc_day.1, "Asia/Tokyo"), ("2026-11-01".into(), true));
        assert_eq!(day(utc_day.0, utc_day.1, "Pacific/Kiritimati"), ("2026-11-02".into(), true));
        // a bucket cut at the zone's own midnights is exactly its day
        let ny = ("2026-11-01T04:00:00Z", Some("2026-11-02T05:00:00Z"));
        assert_eq!(day(ny.0, ny.1, "America/New_York"), ("2026-11-01".into(), false));
        // no `end_time`: a day from the start
        assert_eq!(day(utc_day.0, None, "UTC"), ("2026-11-01".into(), false));
    }

    #[test]
    fn costs_line_items_give_product_and_model() {
        // the shape `budgit serve`'s Costs API writes for `group_by=user_id&group_by=line_item`
        let text = r#"{"object": "page", "data": [
  {"object": "bucket", "start_time": 1793491200, "end_time": 1793577600, "results": [
    {"object": "organization.costs.result", "amount": {"value": 7.5, "currency": "credits"},
     "line_item": "codex, gpt-5-codex", "project_id": null, "user_id": "a@x.com", "product": null, "model": null},
    {"object": "organization.costs.result", "amount": {"value": 2, "currency": "credits"},
     "line_item": "chatgpt, gpt-5, mini", "user_id": "b@x.com"},
    {"object": "organization.costs.result", "amount": {"value": 1, "currency": "credits"},
     "line_item": "codex", "product": "chatgpt", "model": "o3", "user_id": "b@x.com"},
    {"object": "organization.costs.result", "amount": {"value": 4, "currency": "credits"},
     "line_item": null, "user_id": "a@x.com"}
  ]}], "has_more": false, "next_page": null}"#;
        let mut t = table();
        let diags =
            parse_usage(&"c.json".into(), text.as_bytes(), UsageFormat::CostsApi, &mut t, Tz::UTC).unwrap();
        let product = |i: usize| t.products()[t.product[i] as usize].as_str();
        let model = |i: usize| t.models()[t.model[i] as usize].as_str();
        assert_eq!((product(0), model(0)), ("codex", "gpt-5-codex"));
        assert_eq!((product(1), model(1)), ("chatgpt", "gpt-5, mini"));
        // explicit fields win over the line item
        assert_eq!((product(2), model(2)), ("chatgpt", "o3"));
        // no product anywhere: still counted toward the user's total, and reported
        assert_eq!((product(3), t.micros[3]), ("", 4_000_000));
        assert_eq!(
            codes(&diags),
            vec![(
                9,
                1,
                "the product of `a@x.com`'s 4 credits is unknown: the result has no `product` or `line_item`"
                    .to_string()
            )]
        );
        assert_eq!(diags[0].code, Code::UsageNoProduct);
    }

    #[test]
    fn json_credits_are_read_exactly() {
        // the text as written, trailing zeros and exponent included, never a float's
        let text = "{\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":999999.999999}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":0.000001}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":1.500000}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":25e-1}\n";
        let mut t = table();
        let diags =
            parse_usage(&"u.jsonl".into(), text.as_bytes(), UsageFormat::JsonLines, &mut t, Tz::UTC).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(t.micros, vec![999_999_999_999, 1, 1_500_000, 2_500_000]);
    }

    /// Everything a read leaves behind, to compare one read with another.
    type Outcome = (
        Vec<(u32, u16, u16, i32, i64)>,
        Vec<String>,
        Vec<String>,
        Vec<(String, u32, u32)>,
        Option<Credits>,
        Vec<(Code, u32, u32, String)>,
    );

    fn outcome(t: &UsageTable, diags: &[Diagnostic]) -> Outcome {
        let rows =
            (0..t.len()).map(|i| (t.user[i], t.product[i], t.model[i], t.day[i], t.micros[i])).collect();
        let unknown =
            t.unknown_users().iter().map(|u| (u.email.clone(), u.first.line, u.first.column)).collect();
        let mut all = diags.to_vec();
        all.extend(t.unknown_user_diagnostics());
        let found = all
            .iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                (d.code, l.line, l.column, format!("{} / {:?}", d.message, d.label))
            })
            .collect();
        (rows, t.products().to_vec(), t.models().to_vec(), unknown, t.total(), found)
    }

    /// Parses `text` in memory on `threads` threads, every chunk as small as a line.
    fn parse_on(text: &str, threads: usize) -> Outcome {
        let mut t = table();
        let mut ctx = Ctx { file: "u.csv".into(), tz: Tz::UTC, out: Vec::new() };
        parse_csv(&mut ctx, text.as_bytes(), &mut t, threads, 1).unwrap();
        outcome(&t, &ctx.out)
    }

    const DATES: [&str; 4] = ["2026-11-01", "2026-11-02", "2026-11-31", "2026-11-02T23:30:00-05:00"];
    const USERS: [&str; 9] = [
        "a@x.com",
        "b@x.com",
        "zed@x.com",
        "Zed@X.com",
        "\"q,r@x.com\"",
        "\" a@X.COM \"",
        "",
        "y\u{200B}@x.com",
        "\"new\nline@x.com\"",
    ];
    const NAMES: [&str; 6] =
        ["codex", "chatgpt", "\"multi\nline, name\"", "\"p,\"\"q\"\"\"", "gpt-5", " pad "];
    const CREDITS: [&str; 7] = ["1", "0.5", "-1", "lots", "1.1234567", "\"2\"", "1000000.000001"];

    /// A CSV from row recipes: each row picks its fields from the lists above, or is
    /// blank, or holds a quote never closed, or one field too many.
    fn csv_of(
        bom: bool,
        reordered: bool,
        crlf: bool,
        rows: &[(u8, usize, usize, usize, usize, usize, usize)],
    ) -> String {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut s = String::new();
        if bom {
            s.push('\u{FEFF}');
        }
        s.push_str(if reordered {
            "user,date,credits,product,model"
        } else {
            "date,user,product,model,credits"
        });
        s.push_str(nl);
        for &(kind, d, u, p, m, c, n) in rows {
            let (d, u, c) = (DATES[d % DATES.len()], USERS[u % USERS.len()], CREDITS[c % CREDITS.len()]);
            // Many products and models: a recipe's number makes a fresh name.
            let p = if p >= NAMES.len() { format!("p{p}") } else { NAMES[p].to_string() };
            let m = if m >= NAMES.len() { format!("m{m}") } else { NAMES[m].to_string() };
            let user = if u.is_empty() || n % 5 != 0 { u.to_string() } else { format!("u{n}@y.com") };
            match kind % 12 {
                0 => {}
                1 => s.push_str(&format!("{d},\"{user},{p},{m},{c}")),
                2 => s.push_str(&format!("{d},{user},{p},{m},{c},extra")),
                _ if reordered => s.push_str(&format!("{user},{d},{c},{p},{m}")),
                _ => s.push_str(&format!("{d},{user},{p},{m},{c}")),
            }
            s.push_str(nl);
        }
        s
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn any_number_of_threads_reads_what_one_thread_reads(
            bom: bool,
            reordered: bool,
            crlf: bool,
            rows in proptest::collection::vec((0u8..12, 0usize..4, 0usize..12, 0usize..10, 0usize..10, 0usize..7, 0usize..40), 0..60),
        ) {
            let text = csv_of(bom, reordered, crlf, &rows);
            let one = parse_on(&text, 1);
            for threads in [2, 3, 7] {
                proptest::prop_assert_eq!(&parse_on(&text, threads), &one, "{} threads", threads);
            }
            // The same through the file reader, its blocks cut small.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("u.csv");
            std::fs::write(&path, &text).unwrap();
            for (threads, block) in [(1, 7), (2, 13), (3, 64), (7, 1 << 16)] {
                let mut t = table();
                let mut ctx = Ctx { file: "u.csv".into(), tz: Tz::UTC, out: Vec::new() };
                stream_csv(&path, &mut ctx, &mut t, block, threads, 1).unwrap();
                proptest::prop_assert_eq!(&outcome(&t, &ctx.out), &one, "{} threads, blocks of {}", threads, block);
            }
        }
    }

    /// The context a table holds, per documented key, as (row, value).
    fn contexts(t: &UsageTable) -> Vec<Vec<(usize, String)>> {
        ContextKey::ALL
            .iter()
            .map(|&k| t.context_rows(k).map(|(r, v)| (r, v.to_string())).collect())
            .collect()
    }

    #[test]
    fn context_columns_are_read_on_any_number_of_threads_and_other_keys_are_accepted() {
        let mut text = String::from(
            "date,user,product,model,credits,context.repo,context.ticket,context.team,context.workflow\n",
        );
        for k in 0..40 {
            let repo = if k % 3 == 0 { String::new() } else { format!("acme/r{}", k % 4) };
            let workflow = if k % 5 == 0 { "ci-review" } else { "" };
            let credits = if k == 7 { "-1" } else { "1.5" };
            text.push_str(&format!(
                "2026-11-0{},u{}@x.com,codex,gpt-5,{credits},{repo}, T-{k} ,x,{workflow}\n",
                1 + k % 3,
                k % 4
            ));
        }
        let read = |threads: usize| {
            let mut t = table();
            let mut ctx = Ctx { file: "u.csv".into(), tz: Tz::UTC, out: Vec::new() };
            parse_csv(&mut ctx, text.as_bytes(), &mut t, threads, 1).unwrap();
            (contexts(&t), outcome(&t, &ctx.out))
        };
        let one = read(1);
        // `context.team` is not a documented key: accepted without a finding, not read
        let bad: Vec<_> = one.1.5.iter().filter(|d| d.0 != Code::UsageUnknownUser).collect();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(one.1.0.len(), 39);
        let (repo, ticket, workflow) = (&one.0[0], &one.0[1], &one.0[2]);
        assert_eq!(repo.len(), 25, "{repo:?}");
        assert_eq!(ticket.len(), 39);
        // the bad row 7 is skipped: row 7 of the table is line 10's
        assert_eq!(ticket[7], (7, "T-8".to_string()));
        assert_eq!(workflow.iter().map(|w| w.0).collect::<Vec<_>>(), vec![0, 5, 9, 14, 19, 24, 29, 34]);
        for threads in [2, 3, 7] {
            assert_eq!(read(threads), one, "{threads} threads");
        }
        // a file without context columns keeps no context at all
        let mut t = table();
        parse_usage(
            &"u.csv".into(),
            b"date,user,product,model,credits\n2026-11-01,a@x.com,codex,gpt-5,1\n",
            UsageFormat::Csv,
            &mut t,
            Tz::UTC,
        )
        .unwrap();
        assert!(!t.has_context());
    }

    #[test]
    fn json_lines_context_keeps_the_documented_keys() {
        let text = "{\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":1,\"context\":{\"repo\":\"acme/api\",\"ticket\":42,\"kind\":\"task\"}}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":1}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":1,\"context\":\"acme/api\"}\n\
                    {\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credits\":1,\"context\":{\"workflow\":\"nightly\"}}\n";
        let mut t = table();
        let diags =
            parse_usage(&"u.jsonl".into(), text.as_bytes(), UsageFormat::JsonLines, &mut t, Tz::UTC).unwrap();
        assert_eq!(codes(&diags).iter().map(|d| d.0).collect::<Vec<_>>(), vec![3], "{diags:?}");
        assert_eq!(t.len(), 3);
        assert_eq!(
            contexts(&t),
            vec![
                vec![(0, "acme/api".to_string())],
                vec![(0, "42".to_string())],
                vec![(2, "nightly".to_string())]
            ]
        );
    }

    #[test]
    fn a_cut_inside_a_quoted_newline_is_read_as_one_record() {
        // Two threads cut the rows in the middle, which falls in the long model's
        // quoted lines: the second chunk starts inside that record.
        let long_model = (0..40).map(|k| format!("line {k}")).collect::<Vec<_>>().join("\n");
        let text = format!(
            "date,user,product,model,credits\n\
             2026-11-01,a@x.com,codex,gpt-5,1\n\
             2026-11-01,b@x.com,codex,\"{long_model}\",2\n\
             2026-11-02,zed@x.com,codex,gpt-5,4\n\
             2026-11-31,a@x.com,codex,gpt-5,8\n"
        );
        let header = "date,user,product,model,credits\n".len();
        let middle = header + (text.len() - header) / 2;
        let model_at = text.find("line 0").unwrap();
        assert!(model_at < middle && middle < text.find("\",2").unwrap(), "the cut falls inside the quotes");
        let one = parse_on(&text, 1);
        assert_eq!(parse_on(&text, 2), one);
        let (rows, _, models, unknown, total, found) = one;
        assert_eq!(rows.len(), 3);
        assert_eq!(models, ["gpt-5".to_string(), long_model]);
        assert_eq!(unknown, [("zed@x.com".to_string(), 43, 12)]);
        assert_eq!(total, Some(Credits::from_whole(7)));
        assert_eq!(found[0].0, Code::UsageBadRow);
        assert_eq!((found[0].1, found[0].2), (44, 1), "the bad date's line counts the quoted lines");
    }

    #[test]
    fn json_lines_on_many_threads_read_as_on_one() {
        let mut text = String::new();
        for k in 0..50 {
            text.push_str(&match k % 7 {
                0 => "\n".to_string(),
                1 => "{\"date\":\"2026-11-01\",\"user\":\"a@x.com\",\"credit\":1}\n".to_string(),
                2 => "not json\n".to_string(),
                _ => format!(
                    "{{\"date\":\"2026-11-0{}\",\"user\":\"u{}@y.com\",\"product\":\"p{}\",\"model\":\"m{}\",\"credits\":\"0.{k}\"}}\n",
                    1 + k % 3,
                    k % 4,
                    k % 5,
                    k % 6
                ),
            });
        }
        let run = |threads: usize| {
            let mut t = table();
            let mut ctx = Ctx { file: "u.jsonl".into(), tz: Tz::UTC, out: Vec::new() };
            parse_jsonl(&mut ctx, text.as_bytes(), &mut t, threads, 1);
            outcome(&t, &ctx.out)
        };
        let one = run(1);
        assert_eq!(one.3.len(), 4, "four unknown users");
        assert_eq!(one.5.iter().filter(|f| f.0 == Code::UsageBadRow).count(), 14);
        for threads in [2, 3, 7] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }
}
