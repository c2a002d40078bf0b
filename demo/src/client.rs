//! A small blocking client of the service the demo started: it feeds the service
//! through its public API (import, ingest, check, commit) like any other caller.

use std::time::Duration;

use serde_json::Value;

use super::DemoError;

/// Largest answer read (an ingest answer lists every event of its batch).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// An admin client of one service.
#[derive(Clone)]
pub struct Client {
    base: String,
    bearer: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `base` (`http://host:port`) with the admin token.
    pub fn new(base: &str, token: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build();
        Client { base: base.to_string(), bearer: format!("Bearer {token}"), agent: config.into() }
    }

    /// POSTs a body and returns the JSON answer; a non-2xx answer is an error naming the call.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value, DemoError> {
        let answer = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("authorization", &self.bearer)
            .header("content-type", content_type)
            .send(body);
        read(path, answer)
    }

    /// POSTs JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, DemoError> {
        self.post(path, "application/json", body.to_string().as_bytes())
    }
}

fn read(
    path: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, DemoError> {
    let fail = |detail: String| DemoError::Api { call: path.to_string(), detail };
    let mut response = answer.map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| fail(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or("no error message");
    Err(fail(format!("HTTP {status}: {message}")))
}
