//! Entry points for the fuzz targets in `fuzz/`: every JSON body the API reads,
//! parsed exactly as its handler parses it, without a server or a store.
//!
//! Not part of the service's interface. It exists so that a fuzzer reaches the
//! handlers' own types and checks instead of copies of them, which would drift.

use axum::body::Bytes;
use axum::http::StatusCode;
use budgit_engine::workspace::RunSummary;
use budgit_engine::workspace::wire::SetLimits;
use serde::Serialize;

use super::{check, events, json_body, requests};
use crate::console::proposals;
use crate::error::ApiError;

/// A request body the API reads as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `POST /v1/check`.
    Check,
    /// `POST /v1/reservations/{id}/commit`.
    Commit,
    /// `POST /v1/usage/events`.
    UsageEvents,
    /// `PUT /v1/limits`.
    Limits,
    /// `POST /v1/requests`.
    CreditRequest,
    /// `POST /v1/requests/{id}/approve`.
    Approve,
    /// `POST /v1/requests/{id}/decline`.
    Decline,
    /// `POST /v1/leases/{name}`.
    Lease,
    /// `POST /v1/proposals`.
    Proposal,
    /// `PUT /v1/reconciler/status`.
    ReconcilerStatus,
    /// `POST /console/session`.
    SignIn,
}

impl Body {
    /// Every body, in a fixed order (a fuzz input's first byte picks one).
    pub const ALL: [Body; 11] = [
        Body::Check,
        Body::Commit,
        Body::UsageEvents,
        Body::Limits,
        Body::CreditRequest,
        Body::Approve,
        Body::Decline,
        Body::Lease,
        Body::Proposal,
        Body::ReconcilerStatus,
        Body::SignIn,
    ];
}

/// What a body that parsed is, re-encoded as JSON, for the bodies whose type the
/// engine also writes (the reconciler's messages); `None` for the others.
pub type Reencoded = Option<String>;

/// Parses `bytes` as the handler of `body` does before it touches the store.
///
/// The error is the one the API would answer with.
pub fn parse(body: Body, bytes: &[u8]) -> Result<Reencoded, ApiError> {
    let bytes = Bytes::copy_from_slice(bytes);
    match body {
        Body::Check => json_body::<check::CheckIn>(Ok(bytes)).map(|_| None),
        Body::Commit => json_body::<check::CommitIn>(Ok(bytes)).map(|_| None),
        Body::UsageEvents => events::parse_events(json_body(Ok(bytes))?).map(|_| None),
        Body::Limits => json_body::<SetLimits>(Ok(bytes)).and_then(|v| reencode(&v)),
        Body::CreditRequest => json_body::<requests::RequestIn>(Ok(bytes)).map(|_| None),
        Body::Approve => super::json_body_or_default::<requests::DecideIn>(Ok(bytes)).map(|_| None),
        Body::Decline => json_body::<requests::DeclineIn>(Ok(bytes)).map(|_| None),
        Body::Lease => json_body::<requests::LeaseIn>(Ok(bytes)).map(|_| None),
        Body::Proposal => json_body::<proposals::ProposalIn>(Ok(bytes)).map(|_| None),
        Body::ReconcilerStatus => json_body::<RunSummary>(Ok(bytes)).and_then(|v| reencode(&v)),
        Body::SignIn => json_body::<crate::console::ui::SignIn>(Ok(bytes)).map(|_| None),
    }
}

fn reencode<T: Serialize>(value: &T) -> Result<Reencoded, ApiError> {
    serde_json::to_string(value)
        .map(Some)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal/encode", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_body_parses_as_its_handler_parses_it() {
        let check = br#"{"product":"codex","model":"gpt-5","credits":"2.5"}"#;
        assert_eq!(parse(Body::Check, check).map_err(|e| e.code), Ok(None));
        let unknown = br#"{"product":"codex","model":"gpt-5","credits":1,"extra":true}"#;
        assert_eq!(parse(Body::Check, unknown).map_err(|e| e.code), Err("request/bad-json"));
        // events must fall in the accepted time window around the present
        let now = chrono::Utc::now().timestamp();
        let event =
            format!(r#"{{"id":"e1","time":{now},"user":"a@x.com","product":"p","model":"m","credits":1}}"#);
        assert_eq!(parse(Body::UsageEvents, event.as_bytes()).map_err(|e| e.code), Ok(None));
        assert_eq!(parse(Body::UsageEvents, b"[]").map_err(|e| e.code), Err("usage/empty"));
        assert_eq!(parse(Body::Approve, b"  ").map_err(|e| e.code), Ok(None));
        assert_eq!(parse(Body::Approve, b"null").map_err(|e| e.code), Ok(None));
        assert_eq!(parse(Body::Decline, b"null").map_err(|e| e.code), Err("request/bad-json"));
    }

    #[test]
    fn reconciler_messages_come_back_re_encoded() {
        let limits = parse(Body::Limits, br#"{"commit":"abc"}"#).map_err(|e| e.code);
        let Ok(Some(json)) = limits else { panic!("`PUT /v1/limits` body refused: {limits:?}") };
        assert!(json.contains(r#""commit":"abc""#), "{json}");
        assert_eq!(parse(Body::Limits, json.as_bytes()).map_err(|e| e.code), Ok(Some(json)));
    }
}
