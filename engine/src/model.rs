//! The policy model: the four kinds of document a policy repository holds.
//!
//! These types are the single source of truth for the file format: the JSON
//! Schemas in `schemas/` are generated from them (doc comments become
//! descriptions), and every document is deserialized into them after it passed
//! schema validation. Spans are kept out of these types (the loader keeps the
//! YAML node of each document beside it) so that the schema stays clean.

mod group;
mod guardrail;
mod limit;
mod overrides;
mod when;
mod workspace;

pub use group::{Group, GroupOpenAi, GroupVendors, Pool};
pub use guardrail::{AppliesTo, Guardrail, RuleSeverity};
pub use limit::{Limit, LimitAdd};
pub use overrides::Override;
pub use when::When;
pub use workspace::{
    AttributeType, Enforcement, OpenAiReconcile, OverridePolicy, Period, Vendor, VendorMoney, Workspace,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API version every document declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum ApiVersion {
    /// The first and current version.
    #[default]
    #[serde(rename = "budgit/v1")]
    V1,
}

/// The kinds of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    /// Workspace-wide settings and the default limit; exactly one per repository.
    Workspace,
    /// A group of users with a shared limit rule.
    Group,
    /// A time-boxed individual override.
    Override,
    /// A CEL rule about the policy itself.
    Guardrail,
}

impl Kind {
    /// Every kind, in schema order.
    pub const ALL: [Kind; 4] = [Kind::Workspace, Kind::Group, Kind::Override, Kind::Guardrail];

    /// The name as written in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Workspace => "Workspace",
            Kind::Group => "Group",
            Kind::Override => "Override",
            Kind::Guardrail => "Guardrail",
        }
    }

    /// Parses the name written in `kind:`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The lowercase name used by guardrails' `applies_to` and CEL variables.
    pub fn lowercase(self) -> &'static str {
        match self {
            Kind::Workspace => "workspace",
            Kind::Group => "group",
            Kind::Override => "override",
            Kind::Guardrail => "guardrail",
        }
    }
}

/// One parsed policy document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Document {
    /// A `Workspace`.
    Workspace(Workspace),
    /// A `Group`.
    Group(Group),
    /// An `Override`.
    Override(Override),
    /// A `Guardrail`.
    Guardrail(Guardrail),
}

impl Document {
    /// The document's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Document::Workspace(_) => Kind::Workspace,
            Document::Group(_) => Kind::Group,
            Document::Override(_) => Kind::Override,
            Document::Guardrail(_) => Kind::Guardrail,
        }
    }

    /// The document's `name`.
    pub fn name(&self) -> &str {
        match self {
            Document::Workspace(d) => &d.name,
            Document::Group(d) => &d.name,
            Document::Override(d) => &d.name,
            Document::Guardrail(d) => &d.name,
        }
    }

    /// Deserializes a schema-checked JSON value of the given kind.
    pub fn from_json(kind: Kind, value: serde_json::Value) -> Result<Document, serde_json::Error> {
        Ok(match kind {
            Kind::Workspace => Document::Workspace(serde_json::from_value(value)?),
            Kind::Group => Document::Group(serde_json::from_value(value)?),
            Kind::Override => Document::Override(serde_json::from_value(value)?),
            Kind::Guardrail => Document::Guardrail(serde_json::from_value(value)?),
        })
    }
}

/// A document of any kind, for the combined schema (`budgit.schema.json`).
#[derive(JsonSchema)]
#[schemars(title = "budgit policy document")]
#[serde(untagged)]
pub enum AnyDocument {
    /// A `Workspace`.
    #[schemars(title = "Workspace")]
    Workspace(Workspace),
    /// A `Group`.
    #[schemars(title = "Group")]
    Group(Group),
    /// An `Override`.
    #[schemars(title = "Override")]
    Override(Override),
    /// A `Guardrail`.
    #[schemars(title = "Guardrail")]
    Guardrail(Guardrail),
}

/// Generates the JSON Schema of one kind.
pub fn schema_for(kind: Kind) -> serde_json::Value {
    let schema = match kind {
        Kind::Workspace => schemars::schema_for!(Workspace),
        Kind::Group => schemars::schema_for!(Group),
        Kind::Override => schemars::schema_for!(Override),
        Kind::Guardrail => schemars::schema_for!(Guardrail),
    };
    let mut value = schema.to_value();
    simplify(&mut value);
    value
}

/// Rewrites generated schemas into the shape editors and our error messages want:
/// optional fields are "absent or a value", never `null` (YAML `field:` with no
/// value is an error, not an empty value), and enums with documented variants
/// become a plain `enum` so an invalid value is reported as such.
fn simplify(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get("type") {
                let rest: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
                if rest.len() == 1 {
                    map.insert("type".into(), rest[0].clone());
                }
            }
            if let Some(Value::Array(options)) = map.get("anyOf") {
                let rest: Vec<Value> = options
                    .iter()
                    .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if rest.len() == 1 && rest.len() < options.len() {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &rest[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            if let Some(Value::Array(options)) = map.get("oneOf") {
                let consts: Option<Vec<(Value, Option<String>)>> = options
                    .iter()
                    .map(|o| {
                        o.get("const").map(|c| {
                            (c.clone(), o.get("description").and_then(Value::as_str).map(str::to_owned))
                        })
                    })
                    .collect();
                if let Some(consts) = consts {
                    map.remove("oneOf");
                    let docs: Vec<String> = consts
                        .iter()
                        .filter_map(|(c, d)| {
                            d.as_ref().map(|d| {
                                format!("`{}`: {}", c.as_str().unwrap_or_default(), d.trim_end_matches('.'))
                            })
                        })
                        .collect();
                    map.insert("enum".into(), Value::Array(consts.into_iter().map(|(c, _)| c).collect()));
                    if !docs.is_empty() && !map.contains_key("description") {
                        map.insert("description".into(), Value::String(docs.join("; ")));
                    }
                    map.insert("type".into(), Value::String("string".into()));
                }
            }
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            map.values_mut().for_each(simplify);
        }
        Value::Array(items) => items.iter_mut().for_each(simplify),
        _ => {}
    }
}

/// Generates the combined JSON Schema: any one document.
pub fn combined_schema() -> serde_json::Value {
    let mut value = schemars::schema_for!(AnyDocument).to_value();
    simplify(&mut value);
    if let Some(obj) = value.as_object_mut() {
        // Untagged: a document is exactly one of the kinds (its `kind` constant decides).
        if let Some(one_of) = obj.remove("oneOf") {
            obj.insert("anyOf".into(), one_of);
        }
    }
    value
}

/// Maximum length of a CEL expression (selector or rule), in bytes. Longer
/// expressions can exhaust the interpreter's stack; real ones are a few hundred.
pub const MAX_CEL_LEN: usize = 1024;

/// A `name` field: a DNS-label-like identifier.
pub(crate) fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Unique name among documents of this kind: lowercase letters, digits, `-`, `_` and `.`.",
        "type": "string",
        "pattern": "^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$"
    })
}

/// A CEL expression with the length cap.
pub(crate) fn cel_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A CEL expression (at most 1024 bytes).",
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_CEL_LEN
    })
}

/// An email address identifying a user.
pub(crate) fn email_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A user's email address. People are compared by its canonical form (trimmed, Unicode NFC, lowercase); write it that way, as the directory does.",
        "type": "string",
        "pattern": "^[^@\\s]+@[^@\\s]+$",
        "maxLength": 254
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_schema_accepts_each_kind_and_rejects_wrappers() {
        let validator = jsonschema::validator_for(&combined_schema()).unwrap();
        let group = serde_json::json!({
            "apiVersion": "budgit/v1", "kind": "Group", "name": "eng",
            "selector": "user.department == \"Engineering\"", "limit": {"credits": 10}
        });
        let override_doc = serde_json::json!({
            "apiVersion": "budgit/v1", "kind": "Override", "name": "o", "user": "a@acme.com",
            "add": {"credits": 5}, "expires": "2026-11-24", "reason": "why"
        });
        assert!(validator.is_valid(&group));
        assert!(validator.is_valid(&override_doc));
        assert!(!validator.is_valid(&serde_json::json!({ "Group": group })));
    }
}
