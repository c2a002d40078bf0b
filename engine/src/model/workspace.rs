//! The `Workspace` document: settings and the default limit.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Limit};

/// Workspace-wide settings and the default limit. Exactly one per repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Workspace")]
pub struct Workspace {
    /// Always `budgit/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Workspace`.
    #[schemars(schema_with = "kind_schema")]
    pub kind: String,
    /// The workspace's name.
    #[schemars(schema_with = "super::name_schema")]
    pub name: String,
    /// IANA time zone in which periods and dates are read (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The budget period, calendar-aligned in `timezone`.
    #[serde(default)]
    pub period: Period,
    /// Every user's limit unless a group or an override says otherwise.
    pub default: Limit,
    /// `hard`: usage stops at 100%; `soft`: alerts only.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Percent thresholds that raise alerts.
    #[serde(default = "default_alerts")]
    #[schemars(schema_with = "alerts_schema")]
    pub alerts: Vec<u32>,
    /// Directory attributes that selectors may read, with their types.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeType>,
    /// Rules for overrides.
    #[serde(default)]
    pub overrides: OverridePolicy,
}

fn utc() -> String {
    "UTC".into()
}

fn default_alerts() -> Vec<u32> {
    vec![50, 80, 100]
}

fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "Workspace" })
}

fn alerts_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Percent thresholds that raise alerts, each from 1 to 1000.",
        "type": "array",
        "items": { "type": "integer", "minimum": 1, "maximum": 1000 },
        "uniqueItems": true,
        "maxItems": 20
    })
}

/// The budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A calendar day.
    Day,
    /// A week starting on Monday.
    Week,
    /// A calendar month.
    #[default]
    Month,
    /// A calendar quarter.
    Quarter,
}

/// What reaching 100% means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Usage stops at 100%.
    #[default]
    Hard,
    /// Alerts only.
    Soft,
}

/// The type of a directory attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    /// Text.
    String,
    /// A list of texts (`;`-separated in CSV).
    List,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
}

/// Rules every override must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverridePolicy {
    /// Longest allowed override, in days.
    #[serde(default = "default_max_days")]
    #[schemars(range(min = 1, max = 3660))]
    pub max_days: u32,
    /// Whether every override needs a `reason`.
    #[serde(default = "yes")]
    pub require_reason: bool,
}

impl Default for OverridePolicy {
    fn default() -> Self {
        OverridePolicy { max_days: default_max_days(), require_reason: true }
    }
}

fn default_max_days() -> u32 {
    90
}

fn yes() -> bool {
    true
}
