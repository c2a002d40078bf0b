//! The workspace API client: the [`Target`] trait over HTTP, as `budgit serve` speaks it.
//!
//! Blocking (ureq), JSON bodies, a bearer token taken from `BUDGIT_TOKEN`.
//! The token is held privately, never formatted (the `Debug` impl hides it) and
//! never part of an error. HTTP failures become [`WorkspaceError`]s that say
//! whether to retry: 429 (with `Retry-After`), 5xx, timeouts and dropped
//! connections are retryable; other 4xx are not. Paging and retries across
//! calls belong to the caller.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::{LimitRow, PoolRow, SetLimits, SetLimitsAnswer};
use super::{
    AppliedLimit, Batch, BatchResult, LastApplied, Lease, RunSummary, Target, UserRecord, WorkspaceError,
};
use crate::Credits;
use crate::model::Limit;

/// The environment variable holding the workspace token.
pub const TOKEN_ENV: &str = "BUDGIT_TOKEN";

/// Largest answer body read (a page of 10,000 limits is a few MB).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// Rows asked for per page.
const PAGE: usize = 1000;

/// A client of the workspace API.
pub struct HttpWorkspace {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWorkspace").field("base", &self.base).field("token", &"<hidden>").finish()
    }
}

impl HttpWorkspace {
    /// A client of the API at `base` (`http://host:port`), with a per-call timeout.
    pub fn new(base: &str, token: String, timeout: Duration) -> HttpWorkspace {
        HttpWorkspace { base: base.trim_end_matches('/').to_string(), token, agent: agent(timeout) }
    }

    /// A client whose token comes from `BUDGIT_TOKEN`.
    pub fn from_env(base: &str, timeout: Duration) -> Result<HttpWorkspace, WorkspaceError> {
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => {
                Ok(HttpWorkspace::new(base, token.trim().to_string(), timeout))
            }
            _ => Err(WorkspaceError::Protocol(format!("no workspace token: set `{TOKEN_ENV}`"))),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GETs `path` and decodes the answer straight into `T`: no intermediate JSON
    /// tree, so pages of 10,000 rows decode at the speed of the bytes.
    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WorkspaceError> {
        let answer = self.agent.get(&self.url(path)).header("authorization", &self.bearer()).call();
        decode(&read(answer)?)
    }

    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, WorkspaceError> {
        let bytes = serde_json::to_vec(body).map_err(|e| WorkspaceError::Protocol(e.to_string()))?;
        let url = self.url(path);
        let answer = match method {
            "PUT" => self
                .agent
                .put(&url)
                .header("authorization", &self.bearer())
                .header("content-type", "application/json")
                .send(&bytes[..]),
            _ => self
                .agent
                .post(&url)
                .header("authorization", &self.bearer())
                .header("content-type", "application/json")
                .send(&bytes[..]),
        };
        decode(&read(answer)?)
    }

    /// `POST /v1/users/import`: upserts the users of one CSV or JSON Lines body (a
    /// CSV body starts with its header). Bad rows come back as findings, not errors.
    pub fn import_users(&self, body: &[u8], jsonl: bool) -> Result<ImportAnswer, WorkspaceError> {
        let (format, content_type) =
            if jsonl { ("jsonl", "application/x-ndjson") } else { ("csv", "text/csv") };
        let answer = self
            .agent
            .post(&self.url(&format!("/v1/users/import?format={format}")))
            .header("authorization", &self.bearer())
            .header("content-type", content_type)
            .send(body);
        decode(&read(answer)?)
    }

    /// `POST /v1/users/remove`: removes people (and their tokens); answers how many were there.
    pub fn remove_users(&self, emails: &[String]) -> Result<u64, WorkspaceError> {
        #[derive(Deserialize)]
        struct Removed {
            removed: u64,
        }
        let answer: Removed = self.send("POST", "/v1/users/remove", &json!({ "users": emails }))?;
        Ok(answer.removed)
    }

    /// `GET /v1/requests`: every credit request the token may see, oldest first, every page.
    pub fn credit_requests(&self) -> Result<Vec<CreditRequest>, WorkspaceError> {
        let mut out: Vec<CreditRequest> = Vec::new();
        let mut after: i64 = 0;
        loop {
            let answer: Page<CreditRequest, i64> =
                self.get(&format!("/v1/requests?limit=500&after={after}"))?;
            out.extend(answer.data);
            match answer.next {
                Some(next) if answer.has_more && next > after => after = next,
                _ => return Ok(out),
            }
        }
    }

    /// `POST /v1/requests`: asks for `credits` more for `user` over `days`, with a reason and context.
    pub fn create_credit_request(
        &self,
        user: &str,
        credits: Credits,
        days: u32,
        reason: &str,
        context: &Value,
    ) -> Result<CreditRequest, WorkspaceError> {
        let body =
            json!({ "user": user, "credits": credits, "days": days, "reason": reason, "context": context });
        self.send("POST", "/v1/requests", &body)
    }

    /// Pages through a list endpoint keyed by a string cursor (`after`).
    fn pages<T: DeserializeOwned>(&self, path: &str, page: usize) -> Result<Vec<T>, WorkspaceError> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let answer: Page<T, String> =
                self.get(&format!("{path}?limit={page}&after={}", encode(&after)))?;
            out.extend(answer.data);
            match answer.next {
                Some(next) if answer.has_more && next > after => after = next,
                _ => return Ok(out),
            }
        }
    }
}

/// A credit request as `budgit serve` answers it (`/v1/requests`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreditRequest {
    /// The service's id.
    pub id: i64,
    /// Who the credits are for.
    pub user: String,
    /// How many credits (added to the user's limit).
    pub credits: Credits,
    /// For how many days.
    pub days: u32,
    /// Why.
    pub reason: String,
    /// What the requester attached.
    #[serde(default)]
    pub context: Option<Value>,
    /// `pending`, `approved`, `proposed` or `declined`.
    pub status: String,
    /// Why it was decided so.
    #[serde(default)]
    pub decision_reason: Option<String>,
    /// The override proposal: a commit on a branch once proposed (`branch`, `commit`, `file`).
    #[serde(default)]
    pub proposal: Option<Value>,
}

/// What `POST /v1/users/import` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportAnswer {
    /// Users in the body that were imported (created + updated + unchanged).
    pub users: u64,
    /// New users.
    pub created: u64,
    /// Users whose attributes changed.
    pub updated: u64,
    /// Users already as in the body.
    pub unchanged: u64,
    /// Bad rows (left out) and unknown columns.
    #[serde(default)]
    pub diagnostics: Vec<ImportFinding>,
}

/// One finding of an import, on a line of the body.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportFinding {
    /// The diagnostic code (`directory/bad-row`, …).
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// What is wrong.
    pub message: String,
    /// The 1-based line of the body, when the finding has one.
    #[serde(default)]
    pub line: Option<u32>,
}

/// One page of a list endpoint.
#[derive(Deserialize)]
struct Page<T, C> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
    #[serde(default = "none")]
    next: Option<C>,
}

fn none<C>() -> Option<C> {
    None
}

/// An agent whose every call ends within `timeout`, and that hands error statuses back
/// as answers, so [`read`] can tell a retryable one from a refusal.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // Keep a connection per writer alive (`--concurrency`): ureq keeps 3 a host by
        // default, and closing the rest after each call would open one per write.
        .max_idle_connections_per_host(MAX_CONCURRENCY)
        .max_idle_connections(MAX_CONCURRENCY * 2)
        .build()
        .into()
}

/// The most connections a vendor client writes on at once (`--concurrency`).
pub const MAX_CONCURRENCY: usize = 64;

/// Paces every vendor call of one client: `--max-rps` is a total over all the
/// client's connections, and a rate limit (429 with `Retry-After`) holds them all.
///
/// Each call takes the next free start time (a slot `1 / max_rps` after the one
/// before) under the lock, then sleeps until it outside the lock, so several
/// workers can wait at once while their calls still start at most `max_rps` a
/// second in total.
#[derive(Debug)]
pub(super) struct Pacer {
    calls: AtomicU64,
    /// The least time between two call starts; none without `--max-rps`.
    gap: Option<Duration>,
    /// The earliest start of the next call, and the end of a rate-limit hold.
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next: Option<Instant>,
    hold_until: Option<Instant>,
}

impl Pacer {
    /// A pacer for `--max-rps`; no spacing when it is absent or no positive number.
    pub(super) fn new(max_rps: Option<f64>) -> Pacer {
        let gap = max_rps.filter(|r| r.is_finite() && *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        Pacer { calls: AtomicU64::new(0), gap, slots: Mutex::default() }
    }

    /// Calls made so far.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Waits for the next slot and counts the call; the wall clock is the point here.
    pub(super) fn pace(&self) {
        self.pace_unless(None);
    }

    /// Waits for the next slot, then counts the call and answers true, unless `stop`
    /// was set meanwhile (another worker failed): then the call is not made or counted.
    pub(super) fn pace_unless(&self, stop: Option<&AtomicBool>) -> bool {
        let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
        loop {
            let at = {
                let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let mut at = slots.next.map_or(now, |n| n.max(now));
                if let Some(hold) = slots.hold_until {
                    at = at.max(hold);
                }
                slots.next = Some(at + self.gap.unwrap_or_default());
                at
            };
            let wait = at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            if stopped() {
                return false;
            }
            // A hold set while this call waited for its slot: take a slot after it.
            let held = {
                let slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                slots.hold_until.is_some_and(|h| h > Instant::now())
            };
            if !held {
                self.calls.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
    }

    /// No call starts before `wait` from now (the vendor's `Retry-After`), on any connection.
    pub(super) fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.hold_until = Some(slots.hold_until.map_or(until, |h| h.max(until)));
    }
}

pub(super) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, WorkspaceError> {
    serde_json::from_str(text)
        .map_err(|e| WorkspaceError::Protocol(format!("the answer is not as expected: {e}")))
}

/// Percent-encodes a query value.
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of a successful answer, or a typed error.
pub(super) fn read(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<String, WorkspaceError> {
    let mut response = answer.map_err(transport)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.body_mut().with_config().limit(MAX_ANSWER).read_to_string().map_err(transport)?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let error = body.get("error");
    // `code` in budgit's errors; vendor APIs name the kind of error `type`.
    let code = error
        .and_then(|e| e.get("code").or_else(|| e.get("type")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map_or_else(|| format!("HTTP {status}"), str::to_string);
    Err(match status {
        429 => WorkspaceError::RateLimited { retry_after },
        401 | 403 => WorkspaceError::Unauthorized { status, message },
        409 if code == "lease/held" => WorkspaceError::LeaseHeld {
            name: String::new(),
            holder: body.get("holder").and_then(Value::as_str).unwrap_or("another holder").to_string(),
            expires_at: body.get("expires_at").and_then(Value::as_str).map(str::to_string),
        },
        s if s >= 500 => WorkspaceError::Server { status, code, message, retry_after },
        _ => WorkspaceError::Rejected { status, code, message },
    })
}

/// Maps a transport failure; never carries request headers (the token).
fn transport(e: ureq::Error) -> WorkspaceError {
    match e {
        ureq::Error::Timeout(_) => WorkspaceError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => WorkspaceError::Timeout,
        ureq::Error::Io(io) => WorkspaceError::Connection(io.kind().to_string()),
        ureq::Error::ConnectionFailed => WorkspaceError::Connection("connection failed".to_string()),
        ureq::Error::HostNotFound => WorkspaceError::Connection("host not found".to_string()),
        ureq::Error::Protocol(p) => WorkspaceError::Connection(format!("the connection broke: {p}")),
        other => WorkspaceError::Protocol(other.to_string()),
    }
}

#[derive(Deserialize)]
struct AuditRow {
    seq: i64,
    actor: String,
    action: String,
    subject: String,
    /// Kept raw: only `limit.set` rows are read, and other actions (pools, settings,
    /// proposals) record values of other shapes.
    #[serde(default)]
    new: Option<Value>,
    #[serde(default)]
    commit: Option<String>,
}

/// The `new` side of an audit row (limit rows; pool and settings rows have other fields).
#[derive(Deserialize)]
struct AuditValue {
    #[serde(default)]
    limit: Option<Limit>,
    #[serde(default)]
    source: Option<SourceKind>,
}

#[derive(Deserialize)]
struct SourceKind {
    kind: String,
}

#[derive(Deserialize)]
struct LeaseAnswer {
    #[serde(default)]
    expires_at: Option<String>,
}

impl Target for HttpWorkspace {
    fn users(&self) -> Result<Vec<UserRecord>, WorkspaceError> {
        self.pages("/v1/users", PAGE)
    }

    fn limits(&self) -> Result<Vec<AppliedLimit>, WorkspaceError> {
        let rows: Vec<LimitRow> = self.pages("/v1/limits", 10_000)?;
        Ok(rows
            .into_iter()
            .map(|row| AppliedLimit {
                user: row.user,
                limit: Limit {
                    credits: row.credits,
                    products: row.products,
                    models: row.models,
                    per_hour: row.per_hour,
                },
                group: row.group,
                source: row.source,
                commit: row.commit,
            })
            .collect())
    }

    fn pools(&self) -> Result<BTreeMap<String, Credits>, WorkspaceError> {
        let page: Page<PoolRow, String> = self.get("/v1/pools")?;
        Ok(page.data.into_iter().map(|p| (p.group, p.credits)).collect())
    }

    fn last_applied(&self, actor: &str) -> Result<BTreeMap<String, LastApplied>, WorkspaceError> {
        // The audit log records the actor as `<principal> (<actor>)`.
        let suffix = format!("({actor})");
        let mut out = BTreeMap::new();
        let mut after = 0i64;
        loop {
            let page: Page<AuditRow, i64> = self.get(&format!("/v1/audit?limit={PAGE}&after={after}"))?;
            let more = page.has_more && !page.data.is_empty();
            for row in page.data {
                after = after.max(row.seq);
                if !row.actor.ends_with(&suffix) {
                    continue;
                }
                match (row.action.as_str(), row.new) {
                    ("limit.set", Some(new)) => {
                        let value: AuditValue = serde_json::from_value(new)
                            .map_err(|e| WorkspaceError::Protocol(format!("audit entry {}: {e}", row.seq)))?;
                        if let AuditValue { limit: Some(limit), source } = value {
                            let source_kind = source.map(|s| s.kind);
                            out.insert(row.subject, LastApplied { limit, commit: row.commit, source_kind });
                        }
                    }
                    ("limit.remove", _) => {
                        out.remove(&row.subject);
                    }
                    _ => {}
                }
            }
            if !more {
                return Ok(out);
            }
        }
    }

    fn apply(&self, batch: &Batch) -> Result<BatchResult, WorkspaceError> {
        let answer: SetLimitsAnswer = self.send("PUT", "/v1/limits", &SetLimits::from(batch))?;
        Ok(BatchResult {
            users: answer.results.into_iter().filter_map(|r| Some((r.user?, r.status))).collect(),
            pools: answer.pools.into_iter().filter_map(|r| Some((r.group?, r.status))).collect(),
        })
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, WorkspaceError> {
        let body = json!({ "holder": holder, "ttl_seconds": ttl.as_secs().max(1) });
        match self.send::<LeaseAnswer>("POST", &format!("/v1/leases/{}", encode(name)), &body) {
            Ok(answer) => Ok(Lease {
                name: name.to_string(),
                holder: holder.to_string(),
                expires_at: answer.expires_at.unwrap_or_default(),
            }),
            Err(WorkspaceError::LeaseHeld { holder, expires_at, .. }) => {
                Err(WorkspaceError::LeaseHeld { name: name.to_string(), holder, expires_at })
            }
            Err(e) => Err(e),
        }
    }

    fn report_run(&self, report: &RunSummary) -> Result<(), WorkspaceError> {
        let mut report = report.clone();
        // The network edge is where a run meets the wall clock.
        report.at = report.at.or_else(|| Some(chrono::Utc::now()));
        let body = serde_json::to_value(&report).map_err(|e| WorkspaceError::Protocol(e.to_string()))?;
        let _: Value = self.send("PUT", "/v1/reconciler/status", &body)?;
        Ok(())
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WorkspaceError> {
        let url = self.url(&format!("/v1/leases/{}?holder={}", encode(name), encode(holder)));
        let answer = self.agent.delete(&url).header("authorization", &self.bearer()).call();
        match read(answer) {
            Ok(_) => Ok(()),
            // Already gone (expired and cleaned up, or never taken): nothing to release.
            Err(WorkspaceError::Rejected { status: 404, .. }) => Ok(()),
            Err(WorkspaceError::LeaseHeld { holder, expires_at, .. }) => {
                Err(WorkspaceError::LeaseHeld { name: name.to_string(), holder, expires_at })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a+b@acme.com"), "a%2Bb%40acme.com");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn debug_hides_the_token() {
        let ws =
            HttpWorkspace::new("http://127.0.0.1:1/", "s3cr3t-token".to_string(), Duration::from_secs(1));
        let shown = format!("{ws:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:1"), "{shown}");
    }

    #[test]
    fn a_refused_connection_is_retryable_and_names_no_token() {
        // Port 1 on loopback: nothing listens there.
        let ws = HttpWorkspace::new("http://127.0.0.1:1", "s3cr3t-token".to_string(), Duration::from_secs(2));
        let err = ws.users().err();
        let err = err.map(|e| (e.is_retryable(), e.to_string()));
        assert!(matches!(&err, Some((true, msg)) if !msg.contains("s3cr3t")), "{err:?}");
    }
}
