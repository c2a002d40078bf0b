//! The `Group` document: a set of users with a shared limit rule.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Limit};
use crate::Credits;

/// A group of users — selected by a CEL expression over directory attributes and
/// listed explicitly — with the limit each member gets and an optional team pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Group")]
pub struct Group {
    /// Always `budgit/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Group`.
    #[schemars(schema_with = "kind_schema")]
    pub kind: String,
    /// Unique group name.
    #[schemars(schema_with = "super::name_schema")]
    pub name: String,
    /// What the group is, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// CEL over `user.*`: users for whom it is true are members (unless excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_cel")]
    pub selector: Option<String>,
    /// Explicit members, always in the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "emails")]
    pub members: Vec<String>,
    /// Users the selector must not pick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "emails")]
    pub exclude: Vec<String>,
    /// A user in several groups gets the one with the highest priority.
    #[serde(default)]
    pub priority: i64,
    /// The limit each member gets.
    pub limit: Limit,
    /// Optional team budget: the whole group's usage per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    /// Where the group's pool lives at a vendor target (`vendors: {openai: {project: proj_…}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors: Option<GroupVendors>,
    /// Who reviews changes to this group (CODEOWNERS entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
}

/// A team budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Credits the whole group may spend per period.
    pub credits: Credits,
}

/// A group's objects at vendor targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupVendors {
    /// The OpenAI project whose monthly spend limit is the group's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<GroupOpenAi>,
}

/// The OpenAI project a group's pool maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupOpenAi {
    /// The project's id, as the OpenAI Admin API names it (`proj_…`).
    #[schemars(regex(pattern = r"^proj_[A-Za-z0-9_-]{1,64}$"))]
    pub project: String,
}

fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "Group" })
}

fn optional_cel(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::cel_schema(generator)
}

fn emails(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = super::email_schema(generator);
    schemars::json_schema!({ "type": "array", "items": item })
}
