//! The `Override` document: a time-boxed change to one user's limit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Limit, LimitAdd, When};

/// A time-boxed individual override: `add` raises the user's resolved limit,
/// `limit` replaces it. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Override")]
pub struct Override {
    /// Always `budgit/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Override`.
    #[schemars(schema_with = "kind_schema")]
    pub kind: String,
    /// Unique override name.
    #[schemars(schema_with = "super::name_schema")]
    pub name: String,
    /// The user's email; matched by its canonical form (trimmed, Unicode NFC, lowercase).
    #[schemars(schema_with = "super::email_schema")]
    pub user: String,
    /// Credits added to the user's resolved limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<LimitAdd>,
    /// A limit that replaces the user's resolved limit, caps included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// When it starts applying (inclusive); a date means midnight in the workspace time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<When>,
    /// When it stops applying (exclusive). Required: overrides always end.
    pub expires: When,
    /// Why, for reviewers and auditors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_email")]
    pub requested_by: Option<String>,
}

fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "Override" })
}

fn optional_email(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::email_schema(generator)
}
