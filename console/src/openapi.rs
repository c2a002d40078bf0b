//! The OpenAPI document describing the API, served at `/openapi.json`.

/// The OpenAPI 3.1 document.
pub fn document() -> serde_json::Value {
    serde_json::json!({})
}
