//! Usage pull: a workspace's Costs API into the CSV usage file `evaluate` and `plan` read.
//!
//! A pull asks for daily buckets grouped by `user_id`, `line_item` and `project_id`,
//! follows every `next_page` cursor, maps vendor user ids to emails (the vendor's
//! users list), converts money to credits at the rate the policy's Workspace
//! declares (`vendors:`), and turns each result into one CSV row with a stable id
//! `<source>:<bucket start>:<hash of user, project, line item>`.
//!
//! The file is the state. A rerun keeps every row of a bucket before the file's
//! last bucket and pulls again from that last bucket on: it may have been open (the
//! current day) when it was pulled, so its rows are replaced, never added to. The
//! new file is written beside the old one and renamed over it, so a pull killed at
//! any moment leaves the previous file whole; a stray temporary file or a last line
//! without its newline (a file cut short by something else) is repaired and said.
//!
//! Network access goes through [`Fetch`]; [`http::HttpFetch`] is its client, with
//! retries on 429 (`Retry-After`), 5xx and timeouts.

mod claude;
pub mod http;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::credits::{Credits, MAX_USAGE_AMOUNT};
use crate::diag::{Code, Diagnostic};
use crate::model::{Vendor, VendorMoney};

/// Where usage is pulled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The OpenAI Admin API (`https://api.openai.com/v1`): money, user ids.
    OpenAi,
    /// A `budgit serve` workspace: credits, emails.
    Budgit,
    /// The Anthropic Admin API of a Claude Enterprise organisation: its per-user
    /// cost report, in fractional minor units, with each user's email.
    ClaudeEnterprise,
}

impl Source {
    /// The name used in flags, ids and messages.
    pub fn name(self) -> &'static str {
        match self {
            Source::OpenAi => "openai",
            Source::Budgit => "budgit",
            Source::ClaudeEnterprise => crate::vendor::CLAUDE_ENTERPRISE,
        }
    }

    /// The environment variable holding the key: the one the official SDK reads for
    /// OpenAI, the admin token for budgit.
    pub fn key_env(self) -> &'static str {
        match self {
            Source::OpenAi => "OPENAI_ADMIN_KEY",
            Source::Budgit => "BUDGIT_ADMIN_TOKEN",
            Source::ClaudeEnterprise => crate::workspace::claude::KEY_ENV,
        }
    }

    /// The Costs API path under the base URL.
    fn costs_path(self) -> &'static str {
        match self {
            Source::OpenAi => "/organization/costs",
            Source::Budgit => "/v1/organization/costs",
            Source::ClaudeEnterprise => claude::USER_COST_REPORT,
        }
    }
}

/// Why a pull stopped. Findings about rows are not errors: they are [`Diagnostic`]s.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The workspace answered with an error that retrying does not fix.
    #[error("`{url}` answered {status}: {message}")]
    Status {
        /// The URL, without the query.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error message.
        message: String,
    },
    /// Still failing after every retry.
    #[error("`{url}` still failing after {attempts} attempts: {last}")]
    GaveUp {
        /// The URL, without the query.
        url: String,
        /// Calls made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer is not the shape of a Costs API page or a users list.
    #[error("`{url}`: {reason}")]
    Protocol {
        /// The URL, without the query.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The output file cannot be used.
    #[error("`{path}`: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The money cannot be converted (no rate, another currency).
    #[error("{0}")]
    Money(String),
}

/// A GET of a JSON document from the workspace, retried as the implementation sees fit.
pub trait Fetch {
    /// GETs `path` (under the base URL) with `query` and returns the JSON answer.
    fn get(&mut self, path: &str, query: &[(&str, String)]) -> Result<Value, PullError>;
}

/// What one credit is worth in a vendor's currency, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    currency: String,
    credit: Decimal,
}

impl Rate {
    /// Credits priced in credits (budgit's own Costs API).
    pub fn credits() -> Rate {
        Rate { currency: "credits".into(), credit: Decimal { mantissa: 1, scale: 0 } }
    }

    /// The rate a Workspace declares for `vendor`.
    pub fn declared(
        vendors: &BTreeMap<Vendor, VendorMoney>,
        vendor: Vendor,
        name: &str,
    ) -> Result<Rate, PullError> {
        let Some(money) = vendors.get(&vendor) else {
            return Err(PullError::Money(format!(
                "the Workspace declares no credit rate for `{name}`: add `vendors: {{ {name}: {{ currency: usd, credit: \"0.01\" }} }}`"
            )));
        };
        Rate::new(&money.currency, &money.credit)
    }

    /// The rate a Workspace declares for `vendor`, for amounts the vendor writes in
    /// minor units of its currency (cents for `usd`), as Claude's reports do.
    pub fn declared_minor(
        vendors: &BTreeMap<Vendor, VendorMoney>,
        vendor: Vendor,
        name: &str,
    ) -> Result<Rate, PullError> {
        let major = Rate::declared(vendors, vendor, name)?;
        let money = vendors
            .get(&vendor)
            .map(crate::vendor::Money::new)
            .transpose()
            .map_err(|e| PullError::Money(e.to_string()))?;
        let digits = money.map_or(0, |m| m.digits);
        // one credit in minor units: the declared worth × 10^digits, exactly
        let credit = if major.credit.scale >= digits {
            Decimal { mantissa: major.credit.mantissa, scale: major.credit.scale - digits }
        } else {
            let by = pow10(digits - major.credit.scale)
                .and_then(|p| major.credit.mantissa.checked_mul(p))
                .ok_or_else(|| PullError::Money("the declared credit rate is out of range".into()))?;
            Decimal { mantissa: by, scale: 0 }
        };
        Ok(Rate { currency: major.currency, credit })
    }

    /// One credit costs `credit` (decimal text) of `currency`.
    pub fn new(currency: &str, credit: &str) -> Result<Rate, PullError> {
        match Decimal::parse(credit) {
            Some(d) if d.mantissa > 0 => Ok(Rate { currency: currency.to_ascii_lowercase(), credit: d }),
            _ => Err(PullError::Money(format!("credit rate `{credit}` is not a positive decimal"))),
        }
    }

    /// `amount` of the currency in credits, rounded half to even to micro-credits;
    /// `exact` says whether it divided without remainder. `None` when out of range.
    fn convert(&self, amount: Decimal) -> Option<(Credits, bool)> {
        // credits = amount / credit = (m_a·10^-s_a) / (m_c·10^-s_c); in micro-credits:
        // m_a·10^(s_c+6) / (m_c·10^s_a)
        let num = amount.mantissa.checked_mul(pow10(self.credit.scale.checked_add(6)?)?)?;
        let den = self.credit.mantissa.checked_mul(pow10(amount.scale)?)?;
        let (q, r) = (num / den, num % den);
        let twice = r.checked_mul(2)?;
        let q = if twice > den || (twice == den && q % 2 == 1) { q + 1 } else { q };
        Some((Credits::from_micros(i64::try_from(q).ok()?), r == 0))
    }
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// A non-negative decimal: `mantissa · 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    /// Plain decimal text or JSON exponent notation (`1.5e-7`), as a number's exact text.
    fn parse(text: &str) -> Option<Decimal> {
        let (digits, exp) = match text.split_once(['e', 'E']) {
            Some((d, e)) => (d, e.strip_prefix('+').unwrap_or(e).parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all = format!("{whole}{frac}");
        let all = all.trim_start_matches('0');
        if all.len() > 36 {
            return None;
        }
        let mantissa: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
        let scale = i32::try_from(frac.len()).ok()?.checked_sub(exp)?;
        if scale >= 0 {
            // more than 30 decimal places is beyond any price: treat as unreadable
            (scale <= 30).then_some(Decimal { mantissa, scale: scale.unsigned_abs() })
        } else {
            Some(Decimal { mantissa: mantissa.checked_mul(pow10(scale.unsigned_abs())?)?, scale: 0 })
        }
    }
}

/// One row of a pulled usage file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The bucket's start (unix seconds).
    pub bucket: i64,
    /// The workspace day the bucket is booked on (as the Costs API reader books it).
    pub date: NaiveDate,
    /// The person's email (or the vendor's id when unmapped).
    pub user: String,
    /// The product.
    pub product: String,
    /// The model.
    pub model: String,
    /// The credits.
    pub credits: Credits,
    /// The vendor project, or empty.
    pub project: String,
    /// The stable id.
    pub id: String,
}

/// The header of a pulled usage file.
pub const HEADER: &str = "date,user,product,model,credits,project,id";

impl Row {
    /// The row as a CSV line, without its newline.
    pub fn to_csv(&self) -> String {
        [
            self.date.to_string(),
            csv_field(&self.user),
            csv_field(&self.product),
            csv_field(&self.model),
            self.credits.to_string(),
            csv_field(&self.project),
            self.id.clone(),
        ]
        .join(",")
    }
}

/// A CSV field, quoted when it holds a separator, a quote, a line break or edge spaces.
fn csv_field(text: &str) -> String {
    let plain = !text.contains([',', '"', '\n', '\r']) && text.trim() == text;
    if plain { text.to_string() } else { format!("\"{}\"", text.replace('"', "\"\"")) }
}

/// The stable id of a result: the same result pulled again gets the same id.
fn row_id(source: Source, bucket: i64, user_id: &str, project: &str, line_item: &str) -> String {
    let mut h = Sha256::new();
    for part in [user_id, project, line_item] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}:{bucket}:{hex}", source.name())
}

/// The bucket start an id carries.
fn id_bucket(id: &str) -> Option<i64> {
    let mut parts = id.split(':');
    let (_, bucket, hash) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && hash.len() == 16).then_some(())?;
    bucket.parse().ok()
}

/// What a pull asks for.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The source.
    pub source: Source,
    /// The first bucket's start (unix seconds, a UTC midnight).
    pub start: i64,
    /// The end (exclusive): now.
    pub end: i64,
    /// The workspace time zone, to book buckets on days.
    pub tz: Tz,
    /// Money to credits.
    pub rate: Rate,
    /// Buckets per page (1–180).
    pub page_size: u32,
}

/// What a pull brought back.
#[derive(Debug, Default)]
pub struct Pulled {
    /// The rows, by bucket in the order received.
    pub rows: Vec<Row>,
    /// Unmapped or unattributed users, inexact conversions.
    pub findings: Vec<Diagnostic>,
    /// Pages read.
    pub pages: u64,
    /// Buckets read.
    pub buckets: u64,
}

/// Progress of a pull, for a note on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Pages read so far.
    pub pages: u64,
    /// Rows so far.
    pub rows: usize,
    /// The end of the last bucket read.
    pub through: i64,
}

/// Pulls every page from `opts.start` to `opts.end`.
pub fn pull(
    fetch: &mut dyn Fetch,
    opts: &PullOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Pulled, PullError> {
    let users = match opts.source {
        Source::OpenAi => Some(openai_users(fetch)?),
        Source::Budgit => None,
        Source::ClaudeEnterprise => return claude::pull(fetch, opts, progress),
    };
    let path = opts.source.costs_path();
    let mut out = Pulled::default();
    let mut unmapped: BTreeMap<String, Credits> = BTreeMap::new();
    let mut unattributed = Credits::ZERO;
    let mut inexact = (0u64, None::<String>);
    let mut page: Option<String> = None;
    loop {
        let mut query = vec![
            ("start_time", opts.start.to_string()),
            ("end_time", opts.end.to_string()),
            ("bucket_width", "1d".to_string()),
            ("group_by", "user_id".to_string()),
            ("group_by", "line_item".to_string()),
            ("group_by", "project_id".to_string()),
            ("limit", opts.page_size.to_string()),
        ];
        if let Some(p) = &page {
            query.push(("page", p.clone()));
        }
        let doc = fetch.get(path, &query)?;
        let bad = |reason: &str| PullError::Protocol { url: path.to_string(), reason: reason.to_string() };
        if doc.get("object").and_then(Value::as_str) != Some("page") {
            return Err(bad("the answer is not a Costs API page (`\"object\": \"page\"`)"));
        }
        let data =
            doc.get("data").and_then(Value::as_array).ok_or_else(|| bad("the page has no `data` array"))?;
        out.pages += 1;
        let mut through = opts.start;
        for bucket in data {
            let start = bucket
                .get("start_time")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("a bucket has no `start_time`"))?;
            let end = bucket
                .get("end_time")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("a bucket has no `end_time`"))?;
            let results = bucket
                .get("results")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("a bucket has no `results`"))?;
            let (Some(s), Some(e)) =
                (DateTime::<Utc>::from_timestamp(start, 0), DateTime::from_timestamp(end, 0))
            else {
                return Err(bad("a bucket's times are out of range"));
            };
            let (day, _) = crate::input::usage::bucket_day(s, Some(e), opts.tz);
            let date =
                crate::usage_table::day_date(day).ok_or_else(|| bad("a bucket's day is out of range"))?;
            out.buckets += 1;
            through = through.max(end);
            for result in results {
                let text = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let (user_id, project, line_item) = (text("user_id"), text("project_id"), text("line_item"));
                let amount = result.get("amount").ok_or_else(|| bad("a result has no `amount`"))?;
                let currency = amount.get("currency").and_then(Value::as_str).unwrap_or_default();
                if !currency.eq_ignore_ascii_case(&opts.rate.currency) {
                    return Err(PullError::Money(format!(
                        "the workspace reports `{currency}`, the Workspace declares `{}` for `{}`",
                        opts.rate.currency,
                        opts.source.name()
                    )));
                }
                let value = match amount.get("value") {
                    Some(Value::Number(n)) => Decimal::parse(n.as_str()),
                    _ => None,
                }
                .ok_or_else(|| bad("a result's `amount.value` is not a non-negative number"))?;
                let Some((credits, exact)) = opts.rate.convert(value) else {
                    return Err(bad("a result's amount is out of range"));
                };
                if credits > MAX_USAGE_AMOUNT {
                    return Err(bad("a result's amount is more than the largest usage amount"));
                }
                if !exact {
                    inexact.0 += 1;
                    inexact.1.get_or_insert_with(|| format!("{} {currency} on {date}", value_text(value)));
                }
                let user = match (&users, user_id.as_str()) {
                    (_, "") => {
                        unattributed = unattributed.saturating_add(credits);
                        "unattributed".to_string()
                    }
                    (None, id) => id.to_ascii_lowercase(),
                    (Some(map), id) => match map.get(id) {
                        Some(email) => email.clone(),
                        None => {
                            let total = unmapped.entry(id.to_string()).or_default();
                            *total = total.saturating_add(credits);
                            id.to_string()
                        }
                    },
                };
                let (product, model) =
                    crate::input::usage::costs_product_model(result).map_err(|e| bad(&e))?;
                let lossy = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
                out.rows.push(Row {
                    bucket: start,
                    date,
                    user,
                    product: product.map(|p| lossy(&p)).unwrap_or_default(),
                    model: lossy(&model),
                    credits,
                    id: row_id(opts.source, start, &user_id, &project, &line_item),
                    project,
                });
            }
        }
        progress(Progress { pages: out.pages, rows: out.rows.len(), through });
        let more = doc.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        match doc.get("next_page").and_then(Value::as_str) {
            Some(next) if more && page.as_deref() != Some(next) => page = Some(next.to_string()),
            Some(_) if more => return Err(bad("`next_page` repeats the cursor just read")),
            None if more => return Err(bad("`has_more` without a `next_page` cursor")),
            _ => break,
        }
    }
    for (id, credits) in unmapped {
        out.findings.push(
            Diagnostic::warning(
                Code::PullUnmappedUser,
                format!("{} user `{id}` is not in the organization's users list ({credits} credits)", opts.source.name()),
            )
            .with_help("the rows keep the vendor's user id; they count in workspace totals but against no one's limit"),
        );
    }
    if !unattributed.is_zero() {
        out.findings.push(
            Diagnostic::warning(
                Code::PullUnattributed,
                format!("{unattributed} credits of costs carry no user id"),
            )
            .with_help("they are written as user `unattributed`: they count in workspace totals but against no one's limit"),
        );
    }
    if let (n, Some(first)) = inexact {
        out.findings.push(inexact_conversion(n, &first));
    }
    Ok(out)
}

/// The one finding for the `n` amounts (the first of them `first`) that a pull
/// rounded to whole micro-credits, whatever the source.
fn inexact_conversion(n: u64, first: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::PullInexactConversion,
        format!(
            "{n} amount{} did not convert to whole micro-credits (first: {first}) and {} rounded half to even",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" },
        ),
    )
    .with_help("declare a `credit` rate that divides the vendor's amounts, or accept the rounding of each row to 0.000001 credits")
}

fn value_text(d: Decimal) -> String {
    if d.scale == 0 {
        return d.mantissa.to_string();
    }
    let s = format!("{:0>width$}", d.mantissa, width = d.scale as usize + 1);
    let (w, f) = s.split_at(s.len() - d.scale as usize);
    format!("{w}.{f}")
}

/// The organization's users, id → lowercase email, across every page.
fn openai_users(fetch: &mut dyn Fetch) -> Result<BTreeMap<String, String>, PullError> {
    let path = "/organization/users";
    let bad = |reason: &str| PullError::Protocol { url: path.to_string(), reason: reason.to_string() };
    let mut users = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_string())];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let doc = fetch.get(path, &query)?;
        let data =
            doc.get("data").and_then(Value::as_array).ok_or_else(|| bad("the list has no `data` array"))?;
        for user in data {
            let id = user.get("id").and_then(Value::as_str).ok_or_else(|| bad("a user has no `id`"))?;
            if let Some(email) = user.get("email").and_then(Value::as_str) {
                let email = crate::identity::canonical_email(email)
                    .map_or_else(|_| email.trim().to_ascii_lowercase(), std::borrow::Cow::into_owned);
                users.insert(id.to_string(), email);
            }
        }
        let more = doc.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        let last = doc.get("last_id").and_then(Value::as_str).map(str::to_string);
        match last {
            Some(l) if more && after.as_deref() != Some(l.as_str()) => after = Some(l),
            _ if more => return Err(bad("`has_more` without a new `last_id` cursor")),
            _ => break,
        }
    }
    Ok(users)
}

/// A pulled usage file as found: the rows to keep and where to pull from.
#[derive(Debug, Default)]
pub struct Existing {
    /// The lines (without newline) of every bucket before the last one.
    pub kept: Vec<String>,
    /// The last bucket in the file: the next pull starts there.
    pub last_bucket: Option<i64>,
    /// Repairs made, for a note.
    pub repaired: Vec<String>,
}

/// The temporary file a pull writes before renaming it over `out`.
fn temp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.pulling"))
}

/// Reads `out` (missing: empty), removing a temporary file a killed pull left behind.
pub fn read_existing(out: &Path) -> Result<Existing, PullError> {
    let file_err = |reason: String| PullError::File { path: out.to_path_buf(), reason };
    let mut existing = Existing::default();
    let temp = temp_path(out);
    if temp.exists() {
        std::fs::remove_file(&temp)
            .map_err(|e| file_err(format!("cannot remove `{}`: {e}", temp.display())))?;
        existing.repaired.push(format!("removed `{}`, left by a pull that did not finish", temp.display()));
    }
    let text = match std::fs::read(out) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| file_err("is not UTF-8 text".into()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(existing),
        Err(e) => return Err(file_err(e.to_string())),
    };
    if text.is_empty() {
        return Ok(existing);
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    // text ending in a newline leaves one empty piece; anything else is a cut-off line
    if let Some(last) = lines.pop()
        && !last.is_empty()
    {
        existing
            .repaired
            .push(format!("dropped a last line cut short (`{}`)", crate::input::show(last.as_bytes())));
    }
    let mut rows = lines.into_iter();
    match rows.next() {
        Some(h) if h.trim_end_matches('\r') == HEADER => {}
        None => return Ok(existing),
        Some(_) => {
            return Err(file_err(format!(
                "is not a file `usage pull` wrote (its header is not `{HEADER}`); pull into a new file"
            )));
        }
    }
    let mut parsed = Vec::new();
    for (i, line) in rows.enumerate() {
        let bucket = line
            .rsplit_once(',')
            .and_then(|(_, id)| id_bucket(id))
            .ok_or_else(|| file_err(format!("line {} has no pulled row id; pull into a new file", i + 2)))?;
        parsed.push((bucket, line));
    }
    existing.last_bucket = parsed.iter().map(|(b, _)| *b).max();
    existing.kept = parsed
        .into_iter()
        .filter(|(b, _)| Some(*b) != existing.last_bucket)
        .map(|(_, l)| l.to_string())
        .collect();
    Ok(existing)
}

/// Writes `kept` lines then `rows` (those from `from` on) to `out`, through a
/// temporary file renamed over it once synced.
pub fn write_out(out: &Path, kept: &[String], rows: &[Row]) -> Result<(), PullError> {
    let temp = temp_path(out);
    let file_err = |e: std::io::Error| PullError::File { path: out.to_path_buf(), reason: e.to_string() };
    let file = std::fs::File::create(&temp).map_err(file_err)?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "{HEADER}").map_err(file_err)?;
    for line in kept {
        writeln!(w, "{line}").map_err(file_err)?;
    }
    for row in rows {
        writeln!(w, "{}", row.to_csv()).map_err(file_err)?;
    }
    let file = w.into_inner().map_err(|e| file_err(e.into_error()))?;
    file.sync_all().map_err(file_err)?;
    drop(file);
    std::fs::rename(&temp, out).map_err(file_err)
}

/// Where a pull into a file starts: the file's last bucket, else `since` (UTC midnight).
pub fn start_of(existing: &Existing, since: NaiveDate) -> i64 {
    existing.last_bucket.unwrap_or_else(|| since.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::parse(s).unwrap_or(Decimal { mantissa: -1, scale: 0 })
    }

    #[test]
    fn money_converts_exactly_or_says_it_rounded() {
        let cent = Rate::new("usd", "0.01").map_err(|e| e.to_string());
        let Ok(cent) = cent else { panic!("{cent:?}") };
        assert_eq!(cent.convert(dec("12.34")), Some((Credits::from_micros(1_234_000_000), true)));
        assert_eq!(cent.convert(dec("1e-8")), Some((Credits::from_micros(1), true)));
        // 0.0000000125 usd = 0.00000125 credits: 1.25 micro-credits → 1 (half to even)
        assert_eq!(cent.convert(dec("0.0000000125")), Some((Credits::from_micros(1), false)));
        assert_eq!(cent.convert(dec("0.0000000135")), Some((Credits::from_micros(1), false)));
        assert_eq!(cent.convert(dec("0.000000015")), Some((Credits::from_micros(2), false)));
        let third = Rate::new("usd", "0.03").map_err(|e| e.to_string());
        let Ok(third) = third else { panic!("{third:?}") };
        assert_eq!(third.convert(dec("0.01")), Some((Credits::from_micros(333_333), false)));
        assert!(Rate::new("usd", "0").is_err());
        assert!(Rate::new("usd", "-1").is_err());
        assert_eq!(Decimal::parse("1.5e3"), Some(Decimal { mantissa: 1500, scale: 0 }));
        assert_eq!(Decimal::parse("-1"), None);
        assert_eq!(value_text(dec("0.0000000125")), "0.0000000125");
    }

    #[test]
    fn ids_are_stable_and_carry_their_bucket() {
        let a = row_id(Source::OpenAi, 1_793_491_200, "user-a", "proj_1", "gpt-5, input");
        assert_eq!(a, row_id(Source::OpenAi, 1_793_491_200, "user-a", "proj_1", "gpt-5, input"));
        assert_ne!(a, row_id(Source::OpenAi, 1_793_491_200, "user-a", "proj_2", "gpt-5, input"));
        assert_eq!(id_bucket(&a), Some(1_793_491_200));
        assert_eq!(id_bucket("openai:12"), None);
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
