//! The usage pull's HTTP client: blocking (ureq), a bearer key, retries.
//!
//! A 429 waits what `Retry-After` says (capped), a 5xx, a timeout or a dropped
//! connection backs off exponentially; any other answer that is not 2xx stops the
//! pull with the vendor's error message. The key is never formatted: the `Debug`
//! impl hides it and no error carries it.

use std::time::Duration;

use serde_json::Value;

use super::{Fetch, PullError};

/// Largest answer read (a page of 180 daily buckets of a large organization).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// The longest `Retry-After` honoured: a vendor asking for more stops the pull instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// A retry about to happen, for a note on stderr.
#[derive(Debug, Clone)]
pub struct Retrying {
    /// What failed.
    pub reason: String,
    /// How long until the next attempt.
    pub wait: Duration,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Calls per request at most, the first included.
    pub attempts: u32,
    /// The first backoff; doubled after each failure, up to 30 s.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, backoff: Duration::from_millis(500) }
    }
}

/// A client of one workspace's admin API.
pub struct HttpFetch {
    base: String,
    key: String,
    agent: ureq::Agent,
    retry: RetryPolicy,
    on_retry: Box<dyn FnMut(&Retrying) + Send>,
    /// Headers sent with every call besides the key (Anthropic's `anthropic-version`).
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HttpFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetch").field("base", &self.base).field("key", &"<hidden>").finish()
    }
}

impl HttpFetch {
    /// A client of `base` (paths are appended to it) with a per-call timeout.
    pub fn new(base: &str, key: String, timeout: Duration, retry: RetryPolicy) -> HttpFetch {
        let config =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build();
        HttpFetch {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent: config.into(),
            retry,
            on_retry: Box::new(|_| {}),
            headers: Vec::new(),
        }
    }

    /// Speaks the Anthropic Admin API: the `anthropic-version` header on every call
    /// (the key goes as a bearer token, as the official SDK sends an API key).
    pub fn anthropic(self) -> HttpFetch {
        self.header("anthropic-version", crate::workspace::claude::API_VERSION)
    }

    /// Speaks what `source` expects (see [`HttpFetch::anthropic`]).
    pub fn for_source(self, source: super::Source) -> HttpFetch {
        match source {
            super::Source::ClaudeEnterprise => self.anthropic(),
            super::Source::OpenAi | super::Source::Budgit => self,
        }
    }

    /// Sends `name: value` with every call.
    pub fn header(mut self, name: &str, value: &str) -> HttpFetch {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Calls `on_retry` before each wait.
    pub fn on_retry(mut self, on_retry: impl FnMut(&Retrying) + Send + 'static) -> HttpFetch {
        self.on_retry = Box::new(on_retry);
        self
    }

    /// One call: the JSON body, or whether and when to retry.
    fn once(&self, url: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let mut request = self.agent.get(url).header("authorization", &format!("Bearer {}", self.key));
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        for (k, v) in query {
            request = request.query(*k, v);
        }
        let mut response = request.call().map_err(|e| Failure::Retry(e.to_string(), None))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| Failure::Retry(e.to_string(), None))?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|e| Failure::Stop(status, format!("the answer is not JSON: {e}")));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = body
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("HTTP {status}"), str::to_string);
        match status {
            429 => Err(Failure::Wait(format!("429 {message}"), retry_after)),
            s if s >= 500 => Err(Failure::Retry(format!("{s} {message}"), retry_after)),
            s => Err(Failure::Stop(s, message)),
        }
    }
}

/// Why one call failed.
enum Failure {
    /// Rate limited: wait what the server asked (or back off when it did not say).
    Wait(String, Option<Duration>),
    /// Worth another attempt after a backoff (at least the server's wait, if any).
    Retry(String, Option<Duration>),
    /// Not worth retrying.
    Stop(u16, String),
}

impl Fetch for HttpFetch {
    fn get(&mut self, path: &str, query: &[(&str, String)]) -> Result<Value, PullError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let (reason, wait) = match self.once(&url, query) {
                Ok(v) => return Ok(v),
                Err(Failure::Stop(status, message)) => {
                    return Err(PullError::Status { url, status, message });
                }
                Err(Failure::Wait(reason, asked)) => (reason, asked.unwrap_or(backoff)),
                Err(Failure::Retry(reason, asked)) => (reason, asked.map_or(backoff, |w| w.max(backoff))),
            };
            if attempt >= self.retry.attempts {
                return Err(PullError::GaveUp { url, attempts: attempt, last: reason });
            }
            if wait > MAX_RETRY_AFTER {
                let last = format!("{reason} (asked to wait {} s)", wait.as_secs());
                return Err(PullError::GaveUp { url, attempts: attempt, last });
            }
            attempt += 1;
            (self.on_retry)(&Retrying { reason, wait, attempt });
            std::thread::sleep(wait);
            backoff = backoff.saturating_mul(2).min(Duration::from_secs(30));
        }
    }
}
