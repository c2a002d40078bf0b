//! API errors: one JSON shape, `{"error": {"code", "message"}}`, with the right status.
//!
//! Messages follow the project's style (lowercase, user input in backticks) and
//! never carry a token or a database internal: a storage failure is reported as
//! `store/unavailable`, its detail kept for the request log only ([`Failure`]).
//! Nothing here logs: an error may be built and then handled without reaching a
//! client, so only the request-log middleware, which sees what was answered, writes
//! the detail down.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable kebab-case code, `area/what`.
    pub code: &'static str,
    /// What went wrong, lowercase.
    pub message: String,
    /// Extra fields merged next to `error` (a lease's holder, for example).
    pub extra: Option<serde_json::Value>,
    /// What went wrong inside the server, for the request log; never answered.
    pub detail: Option<String>,
}

/// The server-side detail of an answered error, left in the response's extensions
/// for the request-log middleware; never part of the body.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The error's code.
    pub code: &'static str,
    /// The detail.
    pub detail: String,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), extra: None, detail: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such thing.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed, but a value is out of its documented bounds.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429: a per-user bound on open things (holds, pending requests) is reached.
    pub fn too_many(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }

    /// 403: the token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "auth/forbidden", message)
    }

    /// 401: no valid token.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "auth/unauthorized", "missing or unknown bearer token")
    }

    /// 413: a body or batch too large.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "request/too-large", message)
    }

    /// 503: the store failed; the detail goes to the request log, not to the client.
    pub fn store(detail: &dyn std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store/unavailable",
            "the store could not complete the request",
        );
        e.detail = Some(detail.to_string());
        e
    }

    /// Adds fields next to `error` in the body.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::store(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (self.extra, body.as_object_mut()) {
            for (k, v) in extra {
                obj.insert(k, v);
            }
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(Failure { code: self.code, detail });
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_failure_keeps_its_detail_for_the_log_and_out_of_the_body() {
        let response = ApiError::store(&"disk I/O error at /var/lib/budgit.db").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let failure = response.extensions().get::<Failure>().cloned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("store/unavailable") && !body.contains("disk"), "{body}");
        let failure = failure.map(|f| (f.code, f.detail));
        assert_eq!(failure, Some(("store/unavailable", "disk I/O error at /var/lib/budgit.db".to_string())));
    }

    #[test]
    fn a_client_error_has_no_server_side_detail() {
        let response =
            ApiError::bad_request("request/bad-json", "the body is not valid JSON").into_response();
        assert!(response.extensions().get::<Failure>().is_none());
    }
}
