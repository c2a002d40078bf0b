//! The `Workspace` document: settings and the default limit.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Limit};
use crate::Credits;

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
    /// What one credit is worth in each vendor's currency: usage pulled from a vendor
    /// in money is converted to credits with it (`budgit usage pull`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "vendors_schema")]
    pub vendors: BTreeMap<Vendor, VendorMoney>,
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

fn vendors_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let money = generator.subschema_for::<VendorMoney>();
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "enum": ["openai", "claude-enterprise"] },
        "additionalProperties": money
    })
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

/// A vendor whose admin API budgit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Vendor {
    /// The OpenAI Admin API.
    #[serde(rename = "openai")]
    OpenAi,
    /// The Anthropic Admin API of a Claude Enterprise organisation.
    #[serde(rename = "claude-enterprise")]
    ClaudeEnterprise,
}

/// One credit in a vendor's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorMoney {
    /// The vendor's currency, lowercase ISO 4217 (`usd`).
    #[schemars(regex(pattern = r"^[a-z]{3}$"))]
    pub currency: String,
    /// What one credit costs in that currency, as exact decimal text (`"0.01"`: a
    /// credit is one cent). Quoted, so YAML never reads it as a float.
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$"))]
    pub credit: String,
    /// `openai` only: makes the organisation a target of `budgit reconcile --target
    /// openai` (group pools become project spend limits, the alert levels spend
    /// alerts, the organisation gets a spend limit); `validate` then reports what
    /// OpenAI cannot express.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<OpenAiReconcile>,
}

/// How `budgit reconcile --target openai` writes to an OpenAI organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiReconcile {
    /// The organisation's monthly spend limit in credits; absent: the total exposure
    /// (every member's limit added up, as `budgit plan` counts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_limit: Option<Credits>,
    /// Who the spend alerts email (OpenAI sends alerts only by email); required when
    /// the Workspace has alert levels. As many as the organisation's alerts name: the
    /// vendor declares no most (its SDK's `notification_channel.recipients` is an
    /// unbounded list), so `budgit import` carries every one over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "recipients_schema")]
    pub alert_recipients: Vec<String>,
}

fn recipients_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = super::email_schema(generator);
    schemars::json_schema!({ "type": "array", "items": item })
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
    /// Drift review (`budgit review`, the console's Review list): a person whose
    /// overrides have followed each other without a break for longer than this many
    /// days is flagged (default 90). A temporary raise that never ends is a group's
    /// limit in disguise.
    #[serde(default = "default_review_after_days")]
    #[schemars(range(min = 1, max = 3660))]
    pub review_after_days: u32,
    /// Drift review: a person given this many overrides back to back (each starting at
    /// most a day after the previous one expired), counted through the repository's
    /// history, is flagged (default 3).
    #[serde(default = "default_review_renewals")]
    #[schemars(range(min = 2, max = 100))]
    pub review_renewals: u32,
}

impl Default for OverridePolicy {
    fn default() -> Self {
        OverridePolicy {
            max_days: default_max_days(),
            require_reason: true,
            review_after_days: default_review_after_days(),
            review_renewals: default_review_renewals(),
        }
    }
}

fn default_review_after_days() -> u32 {
    90
}

fn default_review_renewals() -> u32 {
    3
}

fn default_max_days() -> u32 {
    90
}

fn yes() -> bool {
    true
}
