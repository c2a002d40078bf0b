//! The `Guardrail` document: a CEL rule about the policy itself.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiVersion;

/// A CEL rule that every document of one kind must satisfy; checked by `validate` and `plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Guardrail")]
pub struct Guardrail {
    /// Always `budgit/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Guardrail`.
    #[schemars(schema_with = "kind_schema")]
    pub kind: String,
    /// Unique guardrail name.
    #[schemars(schema_with = "super::name_schema")]
    pub name: String,
    /// Which kind of document the rule is evaluated on.
    pub applies_to: AppliesTo,
    /// CEL that must be true; sees `workspace` and the document (`override`, `group`).
    #[schemars(schema_with = "super::cel_schema")]
    pub rule: String,
    /// Shown when the rule is false.
    pub message: String,
    /// `error` fails validation; `warning` only reports.
    #[serde(default)]
    pub severity: RuleSeverity,
}

/// The kind of document a guardrail checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppliesTo {
    /// Every `Override`.
    Override,
    /// Every `Group`.
    Group,
    /// The `Workspace`.
    Workspace,
}

/// How bad a failed guardrail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    /// Fails validation.
    #[default]
    Error,
    /// Reported only.
    Warning,
}

fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "Guardrail" })
}
