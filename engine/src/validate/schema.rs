//! Stage 2: JSON Schema, with errors pointed at the YAML node they are about.
//!
//! The schemas are generated from the model types ([`crate::model::schema_for`])
//! and compiled once. jsonschema reports an unknown property at its parent
//! object; we point at the offending key instead, and suggest the closest known
//! field.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use jsonschema::error::ValidationErrorKind;

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::load::node_location;
use crate::load::yaml::{Node, Value};
use crate::model::{Kind, MAX_CEL_LEN, When, schema_for};

struct Compiled {
    validator: jsonschema::Validator,
    /// Every property name the schema knows, for "did you mean".
    fields: BTreeSet<String>,
}

fn compiled(kind: Kind) -> Option<&'static Compiled> {
    static CACHE: [OnceLock<Option<Compiled>>; 4] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = Kind::ALL.iter().position(|k| *k == kind)?;
    CACHE[index]
        .get_or_init(|| {
            let schema = schema_for(kind);
            let mut fields = BTreeSet::new();
            collect_fields(&schema, &mut fields);
            jsonschema::validator_for(&schema).ok().map(|validator| Compiled { validator, fields })
        })
        .as_ref()
}

fn collect_fields(schema: &serde_json::Value, out: &mut BTreeSet<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            for v in map.values() {
                collect_fields(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_fields(v, out)),
        _ => {}
    }
}

/// Checks one document against its kind's schema; returns every finding.
pub fn check(
    kind: Kind,
    json: &serde_json::Value,
    node: &Node,
    file: &Arc<str>,
    commit: Option<&Arc<str>>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(compiled) = compiled(kind) else {
        out.push(Diagnostic::error(
            Code::SchemaInternal,
            format!("the schema of `{}` does not compile", kind.as_str()),
        ));
        return out;
    };
    // A missing field that an unknown one is a typo of is reported once, as the typo.
    let mut suggested: Vec<(String, String)> = Vec::new();
    let mut missing: Vec<(String, String, usize)> = Vec::new();
    for error in compiled.validator.iter_errors(json) {
        let pointer = error.instance_path().to_string();
        let at = node.nearest(&pointer);
        let loc = node_location(file, commit, at);
        let field = pointer.rsplit('/').next().unwrap_or("").to_string();
        let d = match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                // One pass over the mapping's keys: a file with thousands of unknown
                // fields must not cost a scan per field.
                let keys: std::collections::HashMap<String, &Node> = match &at.value {
                    Value::Map(entries) => entries.iter().map(|(k, _)| (k.scalar_text(), k)).collect(),
                    _ => std::collections::HashMap::new(),
                };
                for key in unexpected {
                    let key_node = keys.get(key.as_str()).copied().unwrap_or(at);
                    let mut d = Diagnostic::error(Code::SchemaUnknownField, format!("unknown field `{key}`"))
                        .at(node_location(file, commit, key_node))
                        .with_label("not a field here");
                    if let Some(s) = did_you_mean(key, compiled.fields.iter().map(String::as_str)) {
                        suggested.push((pointer.clone(), s.to_string()));
                        d = d.with_help(format!("did you mean `{s}`?"));
                    } else {
                        d = d.with_help("unknown fields are errors so that a typo never silently does nothing");
                    }
                    out.push(d);
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                missing.push((pointer.clone(), name.to_string(), out.len()));
                Diagnostic::error(Code::SchemaMissingField, format!("missing field `{name}`"))
                    .at(loc)
                    .with_label(format!("`{name}` is required here"))
            }
            ValidationErrorKind::Type { .. } => {
                let expected = error.to_string();
                let expected = expected.rsplit(" is not of type ").next().unwrap_or("").trim_matches('"').to_string();
                if matches!(at.value, Value::Null) {
                    Diagnostic::error(Code::SchemaNull, format!("`{field}` is empty"))
                        .at(loc)
                        .with_label(format!("expected {}", article(&expected)))
                        .with_help("write a value; an empty list is `[]` and an empty mapping is `{}`")
                } else {
                    Diagnostic::error(Code::SchemaWrongType, format!("expected {}, found {}", article(&expected), at.type_name()))
                        .at(loc)
                        .with_label(format!("`{}` is {}", short(&at.scalar_text()), at.type_name()))
                        .with_help(type_help(&expected, at))
                }
            }
            ValidationErrorKind::Constant { expected_value } => {
                let expected = expected_value.as_str().unwrap_or("?");
                Diagnostic::error(Code::SchemaWrongValue, format!("`{field}` must be `{expected}`, found `{}`", short(&at.scalar_text())))
                    .at(loc)
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<&str> = options.as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
                let written = at.scalar_text();
                let mut d = Diagnostic::error(Code::SchemaWrongValue, format!("`{}` is not a valid `{field}`", short(&written)))
                    .at(loc);
                d = match did_you_mean(&written, options.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("expected one of {}", options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", "))),
                };
                d
            }
            ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
                Diagnostic::error(Code::SchemaOutOfRange, format!("`{field}` must be at least {limit}, found {}", at.scalar_text()))
                    .at(loc)
                    .with_label("too small")
            }
            ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
                Diagnostic::error(Code::SchemaOutOfRange, format!("`{field}` must be at most {limit}, found {}", at.scalar_text()))
                    .at(loc)
                    .with_label("too large")
            }
            ValidationErrorKind::MaxLength { limit } if (field == "selector" || field == "rule") && *limit == MAX_CEL_LEN as u64 => {
                Diagnostic::error(Code::CelTooLong, format!("expression is longer than {MAX_CEL_LEN} bytes"))
                    .at(loc)
                    .with_help("split the rule into several groups or guardrails; long expressions are hard to review and can exhaust the interpreter")
            }
            ValidationErrorKind::Pattern { .. } if field == "starts" || field == "expires" => {
                // Reported precisely by `check_dates` below.
                continue;
            }
            ValidationErrorKind::Pattern { .. } => {
                let written = at.scalar_text();
                let what = match field.as_str() {
                    "name" => "a name: lowercase letters, digits, `-`, `_` and `.`",
                    "user" | "requested_by" => "an email address",
                    _ if pointer.starts_with("/members") || pointer.starts_with("/exclude") => "an email address",
                    _ => "the expected format",
                };
                Diagnostic::error(Code::SchemaInvalidValue, format!("`{}` is not {what}", short(&written))).at(loc)
            }
            _ => Diagnostic::error(Code::SchemaInvalidValue, crate::load::yaml::lowercase_first(&error.to_string().replace('"', "`")))
                .at(loc),
        };
        out.push(d);
    }
    let mut drop: Vec<usize> = missing
        .into_iter()
        .filter(|(pointer, name, _)| suggested.iter().any(|(p, s)| p == pointer && s == name))
        .map(|(_, _, index)| index)
        .collect();
    drop.sort_unstable();
    for index in drop.into_iter().rev() {
        out.remove(index);
    }
    if kind == Kind::Override {
        check_dates(node, file, commit, &mut out);
    }
    if out.is_empty() {
        check_credits(node, false, file, commit, &mut out);
    }
    out
}

/// Credits are exact decimals with at most six places, within range: a number the
/// schema accepts may still not be an amount of credits.
fn check_credits(
    node: &Node,
    is_credits: bool,
    file: &Arc<str>,
    commit: Option<&Arc<str>>,
    out: &mut Vec<Diagnostic>,
) {
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                let name = key.as_str().unwrap_or("");
                check_credits(value, name == "credits", file, commit, out);
                if matches!(name, "products" | "models")
                    && let Value::Map(inner) = &value.value
                {
                    for (_, cap) in inner {
                        check_credits(cap, true, file, commit, out);
                    }
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|item| check_credits(item, false, file, commit, out)),
        Value::Int(i) if is_credits && i.checked_mul(crate::credits::SCALE).is_none() => {
            out.push(bad_credits(crate::credits::CreditsError::TooLarge(i.to_string()), node, file, commit));
        }
        Value::Float(f) if is_credits => {
            if let Err(e) = crate::Credits::from_f64(*f) {
                out.push(bad_credits(e, node, file, commit));
            }
        }
        Value::Decimal(text) if is_credits => {
            if let Err(e) = text.parse::<crate::Credits>() {
                out.push(bad_credits(e, node, file, commit));
            }
        }
        _ => {}
    }
}

fn bad_credits(
    error: crate::credits::CreditsError,
    node: &Node,
    file: &Arc<str>,
    commit: Option<&Arc<str>>,
) -> Diagnostic {
    Diagnostic::error(Code::SchemaBadCredits, error.to_string())
        .at(node_location(file, commit, node))
        .with_label("not an exact amount of credits")
        .with_help("credits are exact decimals with at most 6 places, such as `2000` or `12.5`")
}

/// Dates must be real calendar dates or RFC 3339 timestamps.
fn check_dates(node: &Node, file: &Arc<str>, commit: Option<&Arc<str>>, out: &mut Vec<Diagnostic>) {
    for field in ["starts", "expires"] {
        let Some(value) = node.get(field) else { continue };
        let Some(text) = value.as_str() else { continue };
        if let Err(message) = When::parse(text) {
            out.push(
                Diagnostic::error(Code::SchemaInvalidDate, message)
                    .at(node_location(file, commit, value))
                    .with_label(format!("`{field}` must be a date"))
                    .with_help("write a date as `2026-11-24` (midnight in the workspace time zone) or a timestamp as `2026-11-24T09:00:00Z`"),
            );
        }
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "string" => "a string".into(),
        "boolean" => "`true` or `false`".into(),
        other => format!("`{other}`"),
    }
}

fn type_help(expected: &str, at: &Node) -> String {
    match (expected, &at.value) {
        ("number" | "integer", Value::String(s))
            if s.len() > 1 && s.ends_with(['k', 'K']) && s[..s.len() - 1].parse::<u32>().is_ok() =>
        {
            // `2k`: thousands.
            format!("write the number without quotes or units, e.g. `{}000`", &s[..s.len() - 1])
        }
        ("number" | "integer", Value::String(s)) => format!(
            "write the number without quotes or units, e.g. `{}`",
            s.chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect::<String>()
                .trim_matches('.')
                .to_string()
                .chars()
                .take(12)
                .collect::<String>()
                .if_empty("2000")
        ),
        ("boolean", Value::String(_)) => {
            "write `true` or `false` (`yes`, `no`, `on` and `off` are strings in YAML 1.2)".into()
        }
        ("array", Value::String(s)) => format!("write a list, e.g. `[{}]`", short(s)),
        ("string", Value::Bool(_)) => "quote the value to make it a string".into(),
        ("string", Value::Int(_) | Value::Float(_) | Value::Decimal(_)) => {
            "quote the value to make it a string".into()
        }
        _ => format!("change the value to {}", article(expected)),
    }
}

trait IfEmpty {
    fn if_empty(self, default: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, default: &str) -> String {
        if self.is_empty() { default.to_string() } else { self }
    }
}

/// Truncates long user input in messages.
fn short(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(40).collect::<String>())
    }
}
