//! Stage 5: guardrails, CEL rules about the policy itself, evaluated on every
//! document they apply to.
//!
//! A rule sees `workspace`, the document it checks (`override`, `group`, or the
//! workspace itself), and `now`. Values are bound with the types a rule author
//! expects (CEL never converts between int, uint and double by itself): credits
//! are doubles, dates are timestamps (a date is midnight in the workspace time
//! zone), counts are ints, and an
//! optional field that is absent is absent from its map so `has()` tells. A rule
//! that is false is `guardrail/failed` at the document; a rule that cannot be
//! evaluated is `guardrail/error` at the rule, with a hint — never a silent pass.
//!
//! The `cel` context is built once per guardrail and only the document variable is
//! rebound per document (binding costs several times an evaluation). Syntax and
//! references were checked by [`super::cel`]; rules that failed there are not
//! evaluated.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ::cel::{Context, Env, ExecutionError, Value};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::cel::Rule;
use super::semantic::{pointer_key, timezone};
use crate::Credits;
use crate::diag::{Code, Diagnostic, Location, Report, Severity};
use crate::load::{Loaded, PolicySet};
use crate::model::{AppliesTo, Group, Limit, LimitAdd, Override, RuleSeverity, Workspace};

/// What a bound value holds, for checking the fields a rule reads, and their
/// types, before running it. It mirrors the values bound below ([`workspace_value`],
/// [`group_value`], [`override_value`]); a test keeps the two in step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// A scalar or a list of scalars: nothing to select from.
    Leaf(Leaf),
    /// A map with free keys (`products`, `attributes`) and values of one type.
    Map(Leaf),
    /// A record with these fields.
    Fields(&'static [(&'static str, Shape)]),
}

/// The CEL type of a bound scalar or list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// A string (names, emails, and words such as `month`).
    String,
    /// An int (counts, priorities).
    Int,
    /// A double (credits).
    Double,
    /// A bool.
    Bool,
    /// A timestamp (dates).
    Timestamp,
    /// A list of strings.
    Strings,
    /// A list of ints.
    Ints,
}

const LIMIT: &[(&str, Shape)] = &[
    ("credits", Shape::Leaf(Leaf::Double)),
    ("products", Shape::Map(Leaf::Double)),
    ("models", Shape::Map(Leaf::Double)),
];

const WORKSPACE: &[(&str, Shape)] = &[
    ("name", Shape::Leaf(Leaf::String)),
    ("timezone", Shape::Leaf(Leaf::String)),
    ("period", Shape::Leaf(Leaf::String)),
    ("default", Shape::Fields(LIMIT)),
    ("enforcement", Shape::Leaf(Leaf::String)),
    ("alerts", Shape::Leaf(Leaf::Ints)),
    ("attributes", Shape::Map(Leaf::String)),
    (
        "overrides",
        Shape::Fields(&[("max_days", Shape::Leaf(Leaf::Int)), ("require_reason", Shape::Leaf(Leaf::Bool))]),
    ),
];

const GROUP: &[(&str, Shape)] = &[
    ("name", Shape::Leaf(Leaf::String)),
    ("description", Shape::Leaf(Leaf::String)),
    ("selector", Shape::Leaf(Leaf::String)),
    ("members", Shape::Leaf(Leaf::Strings)),
    ("exclude", Shape::Leaf(Leaf::Strings)),
    ("priority", Shape::Leaf(Leaf::Int)),
    ("limit", Shape::Fields(LIMIT)),
    ("pool", Shape::Fields(&[("credits", Shape::Leaf(Leaf::Double))])),
    ("owners", Shape::Leaf(Leaf::Strings)),
];

const OVERRIDE: &[(&str, Shape)] = &[
    ("name", Shape::Leaf(Leaf::String)),
    ("user", Shape::Leaf(Leaf::String)),
    ("add", Shape::Fields(LIMIT)),
    ("limit", Shape::Fields(LIMIT)),
    ("starts", Shape::Leaf(Leaf::Timestamp)),
    ("expires", Shape::Leaf(Leaf::Timestamp)),
    ("reason", Shape::Leaf(Leaf::String)),
    ("requested_by", Shape::Leaf(Leaf::String)),
];

/// The variable a guardrail's document is bound to.
pub(crate) fn variable(applies_to: AppliesTo) -> &'static str {
    match applies_to {
        AppliesTo::Override => "override",
        AppliesTo::Group => "group",
        AppliesTo::Workspace => "workspace",
    }
}

/// The fields of a variable a rule may read (`now` is a timestamp); `None` for
/// names that are not bound.
pub(crate) fn shape_of(variable: &str) -> Option<Shape> {
    match variable {
        "workspace" => Some(Shape::Fields(WORKSPACE)),
        "group" => Some(Shape::Fields(GROUP)),
        "override" => Some(Shape::Fields(OVERRIDE)),
        "now" => Some(Shape::Leaf(Leaf::Timestamp)),
        _ => None,
    }
}

/// Evaluates every compiled guardrail on every document it applies to.
pub(crate) fn check(
    policies: &PolicySet,
    env: &Arc<Env>,
    rules: &[Option<Rule>],
    now: DateTime<Utc>,
    report: &mut Report,
) {
    // Without exactly one workspace (already reported) rules have nothing to read.
    let Some(ws) = policies.workspace() else { return };
    let tz = timezone(&ws.doc).unwrap_or(Tz::UTC);
    let workspace = workspace_value(&ws.doc);
    let mut groups = None;
    let mut overrides = None;
    for (guardrail, rule) in policies.guardrails.iter().zip(rules) {
        let Some(rule) = rule else { continue };
        let mut ctx = Context::with_env(env.clone());
        ctx.add_variable_from_value("workspace", workspace.clone());
        ctx.add_variable_from_value("now", Value::Timestamp(now.fixed_offset()));
        let mut run = Run { guardrail, rule, errors: BTreeMap::new(), report: &mut *report };
        match guardrail.doc.applies_to {
            AppliesTo::Workspace => run.one(&mut ctx, ws, workspace.clone()),
            AppliesTo::Group => {
                let values = groups.get_or_insert_with(|| {
                    policies.groups.iter().map(|g| group_value(&g.doc)).collect::<Vec<_>>()
                });
                for (g, value) in policies.groups.iter().zip(values.iter()) {
                    run.one(&mut ctx, g, value.clone());
                }
            }
            AppliesTo::Override => {
                let values = overrides.get_or_insert_with(|| {
                    policies.overrides.iter().map(|o| override_value(&o.doc, &tz)).collect::<Vec<_>>()
                });
                for (o, value) in policies.overrides.iter().zip(values.iter()) {
                    run.one(&mut ctx, o, value.clone());
                }
            }
        }
        run.finish();
    }
}

/// A document the guardrail failed to evaluate on, kept to report each distinct error once.
struct Failure {
    help: String,
    first: Location,
    first_name: String,
    count: usize,
}

/// One guardrail's pass over its documents.
struct Run<'a> {
    guardrail: &'a Loaded<crate::model::Guardrail>,
    rule: &'a Rule,
    errors: BTreeMap<String, Failure>,
    report: &'a mut Report,
}

trait Named {
    fn name(&self) -> &str;
}

impl Named for Workspace {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Group {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Override {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Run<'_> {
    fn kind(&self) -> &'static str {
        variable(self.guardrail.doc.applies_to)
    }

    fn severity(&self) -> Severity {
        match self.guardrail.doc.severity {
            RuleSeverity::Error => Severity::Error,
            RuleSeverity::Warning => Severity::Warning,
        }
    }

    fn one<T: Named>(&mut self, ctx: &mut Context<'_, '_>, doc: &Loaded<T>, value: Value) {
        let kind = self.kind();
        ctx.add_variable_from_value(kind, value);
        let g = &self.guardrail.doc;
        match self.rule.program.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let d = Diagnostic::error(Code::GuardrailFailed, g.message.clone())
                    .with_severity(self.severity())
                    .at(self.failing_field(doc))
                    .with_label(format!("{kind} `{}` breaks guardrail `{}`", doc.doc.name(), g.name))
                    .with_secondary(self.guardrail.loc("/rule"), format!("the rule of `{}`", g.name));
                self.report.push(d);
            }
            Ok(other) => self.failed(
                doc,
                format!("the rule gives {}, not `true` or `false`", type_name(&other)),
                "a rule must be a condition, such as `override.add.credits <= 5000.0`".into(),
            ),
            Err(e) => {
                let (what, help) = describe(&e, kind, self.rule);
                self.failed(doc, what, help);
            }
        }
    }

    fn failed<T: Named>(&mut self, doc: &Loaded<T>, what: String, help: String) {
        let entry = self.errors.entry(what).or_insert_with(|| Failure {
            help,
            first: doc.loc("/name"),
            first_name: doc.doc.name().to_string(),
            count: 0,
        });
        entry.count += 1;
    }

    /// The field of the document the rule reads that best explains a failure.
    fn failing_field<T>(&self, doc: &Loaded<T>) -> Location {
        let kind = self.kind();
        let best = self
            .rule
            .paths
            .iter()
            .filter(|(root, _)| root == kind)
            .map(|(_, path)| path.iter().map(|p| format!("/{}", pointer_key(p))).collect::<String>())
            .filter(|pointer| !pointer.is_empty() && doc.node.pointer(pointer).is_some())
            .enumerate()
            // The deepest field read; on a tie, the first in the rule.
            .max_by_key(|(i, pointer)| (pointer.matches('/').count(), std::cmp::Reverse(*i)))
            .map(|(_, pointer)| pointer);
        doc.loc(best.as_deref().unwrap_or("/name"))
    }

    fn finish(self) {
        let g = &self.guardrail.doc;
        let kind = self.kind();
        for (what, f) in self.errors {
            let more = match f.count {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            self.report.push(
                Diagnostic::error(
                    Code::GuardrailError,
                    format!(
                        "guardrail `{}` cannot be evaluated on {kind} `{}`{more}: {what}",
                        g.name, f.first_name
                    ),
                )
                .at(self.guardrail.loc("/rule"))
                .with_label("this rule fails to run")
                .with_secondary(f.first, format!("evaluated on this {kind}"))
                .with_help(f.help),
            );
        }
    }
}

/// What went wrong in plain words, and how to write the rule instead.
fn describe(e: &ExecutionError, kind: &str, rule: &Rule) -> (String, String) {
    const MIXED: &str = "CEL never mixes int and double in arithmetic or comparisons: credits are doubles, so write `4.0`, not `4`";
    let mixes =
        |types: &[&str]| types.contains(&"int") && (types.contains(&"double") || types.contains(&"float"));
    match e {
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => {
            let types = [type_name_plain(a), type_name_plain(b)];
            let what = format!("`{}` cannot combine {} and {}", operator(op), type_name(a), type_name(b));
            let help =
                if mixes(&types) { MIXED.into() } else { "convert one side, e.g. with `double()`".into() };
            (what, help)
        }
        ExecutionError::NoSuchOverload(o) => {
            let types: Vec<&str> = o.argument_types().iter().map(String::as_str).collect();
            let what = format!("no `{}` for ({})", operator(o.function()), types.join(", "));
            let help = if mixes(&types) {
                MIXED.into()
            } else {
                "check the types of the values: credits are doubles, dates are timestamps".into()
            };
            (what, help)
        }
        ExecutionError::ValuesNotComparable(a, b) => {
            let types = [type_name_plain(a), type_name_plain(b)];
            let what = format!("cannot compare {} with {}", type_name(a), type_name(b));
            let help = if mixes(&types) { MIXED.into() } else { "compare values of the same type".into() };
            (what, help)
        }
        ExecutionError::NoSuchKey(key) => {
            let key = key.as_str();
            let path = rule
                .paths
                .iter()
                .find_map(|(root, path)| {
                    path.iter().position(|p| p == key).map(|i| format!("{root}.{}", path[..=i].join(".")))
                })
                .unwrap_or_else(|| format!("{kind}.{key}"));
            (
                format!("`{key}` is absent"),
                format!("`{key}` is optional: test it first, as in `!has({path}) || …`"),
            )
        }
        ExecutionError::UndeclaredReference(name) => (
            format!("unknown name `{name}`"),
            format!(
                "a guardrail with `applies_to: {kind}` sees `{kind}`, `workspace` and `now`, and CEL's standard functions"
            ),
        ),
        ExecutionError::DivisionByZero(_) | ExecutionError::RemainderByZero(_) => (
            "division by zero".into(),
            "guard the division, as in `workspace.default.credits == 0.0 || …`".into(),
        ),
        other => (
            crate::load::yaml::lowercase_first(&other.to_string()),
            "simplify the rule, and test optional fields with `has()` before reading them".into(),
        ),
    }
}

/// An operator as written (`_<=_` is `<=`).
fn operator(function: &str) -> String {
    match function {
        "add" => "+".into(),
        "sub" => "-".into(),
        "mul" => "*".into(),
        "div" => "/".into(),
        "rem" => "%".into(),
        "_[_]" => "[]".into(),
        other => other.trim_matches('_').to_string(),
    }
}

fn type_name_plain(value: &Value) -> &'static str {
    match value {
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Map(_) => "map",
        Value::List(_) => "list",
        Value::Timestamp(_) => "timestamp",
        Value::Duration(_) => "duration",
        Value::Null => "null",
        Value::Bytes(_) => "bytes",
        _ => "value",
    }
}

/// A value's type with the value when it is short, for messages: int `4`.
fn type_name(value: &Value) -> String {
    let ty = type_name_plain(value);
    match value {
        Value::Int(i) => format!("{ty} `{i}`"),
        Value::UInt(u) => format!("{ty} `{u}u`"),
        Value::Float(f) => format!("{ty} `{f:?}`"),
        Value::Bool(b) => format!("{ty} `{b}`"),
        _ => ty.to_string(),
    }
}

fn record(entries: Vec<(&str, Value)>) -> Value {
    let map: HashMap<String, Value> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Value::from(map)
}

fn credits(c: Credits) -> Value {
    Value::Float(c.to_f64())
}

fn caps(caps: &BTreeMap<String, Credits>) -> Value {
    let map: HashMap<String, Value> = caps.iter().map(|(k, v)| (k.clone(), credits(*v))).collect();
    Value::from(map)
}

fn strings(items: &[String]) -> Value {
    Value::List(Arc::new(items.iter().map(|s| Value::String(Arc::new(s.clone()))).collect()))
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

fn limit_value(limit: &Limit) -> Value {
    record(vec![
        ("credits", credits(limit.credits)),
        ("products", caps(&limit.products)),
        ("models", caps(&limit.models)),
    ])
}

fn add_value(add: &LimitAdd) -> Value {
    let mut entries = vec![("products", caps(&add.products)), ("models", caps(&add.models))];
    if let Some(c) = add.credits {
        entries.push(("credits", credits(c)));
    }
    record(entries)
}

/// The workspace as a rule sees it.
pub(crate) fn workspace_value(ws: &Workspace) -> Value {
    let attributes: HashMap<String, Value> =
        ws.attributes.iter().map(|(k, v)| (k.clone(), word(v))).collect();
    record(vec![
        ("name", string(&ws.name)),
        ("timezone", string(&ws.timezone)),
        ("period", word(&ws.period)),
        ("default", limit_value(&ws.default)),
        ("enforcement", word(&ws.enforcement)),
        ("alerts", Value::List(Arc::new(ws.alerts.iter().map(|a| Value::Int(i64::from(*a))).collect()))),
        ("attributes", Value::from(attributes)),
        (
            "overrides",
            record(vec![
                ("max_days", Value::Int(i64::from(ws.overrides.max_days))),
                ("require_reason", Value::Bool(ws.overrides.require_reason)),
            ]),
        ),
    ])
}

/// A group as a rule sees it.
pub(crate) fn group_value(g: &Group) -> Value {
    let mut entries = vec![
        ("name", string(&g.name)),
        ("members", strings(&g.members)),
        ("exclude", strings(&g.exclude)),
        ("priority", Value::Int(g.priority)),
        ("limit", limit_value(&g.limit)),
        ("owners", strings(&g.owners)),
    ];
    if let Some(d) = &g.description {
        entries.push(("description", string(d)));
    }
    if let Some(s) = &g.selector {
        entries.push(("selector", string(s)));
    }
    if let Some(p) = &g.pool {
        entries.push(("pool", record(vec![("credits", credits(p.credits))])));
    }
    record(entries)
}

/// An override as a rule sees it; dates are instants in the workspace time zone.
pub(crate) fn override_value(o: &Override, tz: &Tz) -> Value {
    let mut entries = vec![
        ("name", string(&o.name)),
        ("user", string(&o.user)),
        ("expires", Value::Timestamp(o.expires.instant(tz).fixed_offset())),
    ];
    if let Some(add) = &o.add {
        entries.push(("add", add_value(add)));
    }
    if let Some(limit) = &o.limit {
        entries.push(("limit", limit_value(limit)));
    }
    if let Some(starts) = &o.starts {
        entries.push(("starts", Value::Timestamp(starts.instant(tz).fixed_offset())));
    }
    if let Some(reason) = &o.reason {
        entries.push(("reason", string(reason)));
    }
    if let Some(by) = &o.requested_by {
        entries.push(("requested_by", string(by)));
    }
    record(entries)
}

/// The word an enum is written as in YAML (`month`, `hard`, `string`).
fn word<T: serde::Serialize>(value: &T) -> Value {
    string(&serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::test_support::{WORKSPACE, run, summary};

    const NOW: &str = "2026-11-20T12:00:00Z";

    fn guardrail(applies: &str, rule: &str, severity: &str) -> String {
        format!(
            "apiVersion: budgit/v1\nkind: Guardrail\nname: modest\napplies_to: {applies}\nrule: '{rule}'\n\
             message: 'an override may add at most four times the default'\nseverity: {severity}\n"
        )
    }

    fn override_doc(name: &str, add: &str) -> String {
        format!(
            "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {name}@acme.com\n{add}\n\
             starts: 2026-11-10\nexpires: 2026-12-01\nreason: testing\n"
        )
    }

    const DESIGN_RULE: &str = "!has(override.add) || override.add.credits <= 4.0 * workspace.default.credits";

    #[test]
    fn the_rule_of_the_design_passes_and_fails_where_it_should() {
        let g = guardrail("override", DESIGN_RULE, "error");
        let small = override_doc("small", "add: { credits: 8000 }");
        let replace = override_doc("replace", "limit: { credits: 100000 }");
        let large = override_doc("large", "add: { credits: 8000.5 }");
        let report = run(
            &[
                ("ws.yaml", WORKSPACE),
                ("g.yaml", &g),
                ("a.yaml", &small),
                ("b.yaml", &replace),
                ("c.yaml", &large),
            ],
            NOW,
        );
        assert_eq!(summary(&report), ["guardrail/failed c.yaml:5:17"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.message, "an override may add at most four times the default");
        assert_eq!(d.labels[0].location.to_string(), "g.yaml:5:7");
    }

    #[test]
    fn a_warning_guardrail_reports_a_warning() {
        let g = guardrail("override", DESIGN_RULE, "warning");
        let large = override_doc("large", "add: { credits: 9000 }");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("c.yaml", &large)], NOW);
        assert_eq!(summary(&report), ["guardrail/failed c.yaml:5:17"]);
        assert_eq!(report.diagnostics[0].severity, Severity::Warning);
        assert!(!report.has_errors());
    }

    #[test]
    fn mixing_int_and_double_is_an_error_at_the_rule_with_a_hint() {
        // Known before running: the types of both sides are.
        let g = guardrail("override", "override.add.credits <= 4 * workspace.default.credits", "error");
        let a = override_doc("a", "add: { credits: 1 }");
        let b = override_doc("b", "add: { credits: 2 }");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("a.yaml", &a), ("b.yaml", &b)], NOW);
        assert_eq!(summary(&report), ["cel/type-mismatch g.yaml:5:34"]);
        assert_eq!(report.diagnostics[0].message, "`*` cannot combine int and double");
        assert!(report.diagnostics[0].help.as_deref().unwrap().contains("write `4.0`, not `4`"));
        // Only known when running (`dyn`): the rule fails on the documents, with the same hint.
        let g = guardrail("override", "override.add.credits <= dyn(4) * workspace.default.credits", "error");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("a.yaml", &a), ("b.yaml", &b)], NOW);
        assert_eq!(summary(&report), ["guardrail/error g.yaml:5:7"]);
        let d = &report.diagnostics[0];
        assert_eq!(
            d.message,
            "guardrail `modest` cannot be evaluated on override `a` (and 1 more): \
             `*` cannot combine int `4` and double `2000.0`"
        );
        assert!(d.help.as_deref().unwrap().contains("write `4.0`, not `4`"), "{:?}", d.help);
        assert_eq!(d.labels[0].location.to_string(), "a.yaml:3:7");
    }

    #[test]
    fn reading_an_absent_field_suggests_has() {
        let g = guardrail("override", "override.add.credits <= 4.0 * workspace.default.credits", "error");
        let a = override_doc("a", "limit: { credits: 1 }");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("a.yaml", &a)], NOW);
        assert_eq!(summary(&report), ["guardrail/error g.yaml:5:7"]);
        let d = &report.diagnostics[0];
        assert!(d.message.ends_with("`add` is absent"), "{}", d.message);
        assert_eq!(
            d.help.as_deref(),
            Some("`add` is optional: test it first, as in `!has(override.add) || …`")
        );
    }

    #[test]
    fn a_rule_that_is_not_a_condition_is_an_error() {
        let g = guardrail("workspace", "workspace.default.credits", "error");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g)], NOW);
        assert_eq!(summary(&report), ["cel/not-a-condition g.yaml:5:8"]);
        assert_eq!(
            report.diagnostics[0].message,
            "the rule of guardrail `modest` is a double, not a condition"
        );
        let g = guardrail("workspace", "dyn(workspace.default.credits)", "error");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g)], NOW);
        assert_eq!(summary(&report), ["guardrail/error g.yaml:5:7"]);
        assert!(
            report.diagnostics[0].message.ends_with("the rule gives double `2000.0`, not `true` or `false`")
        );
    }

    #[test]
    fn dates_are_timestamps_and_groups_bind_optional_fields() {
        let g = guardrail("override", "override.expires - override.starts <= duration(\"720h\")", "error");
        let ok = override_doc("ok", "add: { credits: 1 }");
        let long = override_doc("long", "add: { credits: 1 }").replace("2026-12-01", "2026-12-11");
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("a.yaml", &ok), ("b.yaml", &long)], NOW);
        assert_eq!(summary(&report), ["guardrail/failed b.yaml:7:10"]);

        let g = guardrail(
            "group",
            "has(group.pool) || group.limit.credits <= 2.5 * workspace.default.credits",
            "error",
        );
        let group = |name: &str, extra: &str| {
            format!("apiVersion: budgit/v1\nkind: Group\nname: {name}\nlimit: {{ credits: 6000 }}\n{extra}")
        };
        let pooled = group("pooled", "pool: { credits: 100000 }\n");
        let bare = group("bare", "");
        let report =
            run(&[("ws.yaml", WORKSPACE), ("g.yaml", &g), ("a.yaml", &pooled), ("b.yaml", &bare)], NOW);
        assert_eq!(summary(&report), ["guardrail/failed b.yaml:4:19"]);
    }

    #[test]
    fn bound_values_have_exactly_the_fields_rules_may_read() {
        fn is(value: &Value, leaf: Leaf) -> bool {
            let all = |l: &[Value], f: fn(&Value) -> bool| l.iter().all(f);
            match (value, leaf) {
                (Value::String(_), Leaf::String)
                | (Value::Int(_), Leaf::Int)
                | (Value::Float(_), Leaf::Double)
                | (Value::Bool(_), Leaf::Bool)
                | (Value::Timestamp(_), Leaf::Timestamp) => true,
                (Value::List(l), Leaf::Strings) => all(l, |v| matches!(v, Value::String(_))),
                (Value::List(l), Leaf::Ints) => all(l, |v| matches!(v, Value::Int(_))),
                _ => false,
            }
        }
        fn keys(value: &Value, shape: Shape, path: &str, out: &mut Vec<String>) {
            let fields = match (value, shape) {
                (Value::Map(map), Shape::Fields(fields)) => (map, fields),
                (Value::Map(map), Shape::Map(leaf)) => {
                    assert!(
                        map.map.values().all(|v| is(v, leaf)),
                        "`{path}` holds values other than {leaf:?}"
                    );
                    return;
                }
                (value, Shape::Leaf(leaf)) => {
                    assert!(is(value, leaf), "`{path}` is bound as {value:?}, declared {leaf:?}");
                    return;
                }
                (value, shape) => panic!("`{path}` is bound as {value:?}, declared {shape:?}"),
            };
            let (map, fields) = fields;
            for (k, v) in map.map.iter() {
                let ::cel::objects::Key::String(k) = k else { panic!("non-string key") };
                let Some((_, inner)) = fields.iter().find(|(n, _)| n == &k.as_str()) else {
                    panic!("`{path}.{k}` is bound but not declared")
                };
                out.push(format!("{path}.{k}"));
                keys(v, *inner, &format!("{path}.{k}"), out);
            }
        }
        let ws: Workspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "budgit/v1", "kind": "Workspace", "name": "w",
            "default": { "credits": 1, "products": { "codex": 1 } }, "attributes": { "title": "string" },
        }))
        .unwrap();
        let group: Group = serde_json::from_value(serde_json::json!({
            "apiVersion": "budgit/v1", "kind": "Group", "name": "g", "description": "d", "selector": "true",
            "limit": { "credits": 1 }, "pool": { "credits": 2 }, "members": ["a@x"], "owners": ["@o"],
        }))
        .unwrap();
        let o: Override = serde_json::from_value(serde_json::json!({
            "apiVersion": "budgit/v1", "kind": "Override", "name": "o", "user": "u@x", "add": { "credits": 1 },
            "limit": { "credits": 1 }, "starts": "2026-01-01", "expires": "2026-01-02", "reason": "r",
            "requested_by": "u@x",
        }))
        .unwrap();
        for (name, value) in [
            ("workspace", workspace_value(&ws)),
            ("group", group_value(&group)),
            ("override", override_value(&o, &Tz::UTC)),
        ] {
            let shape = shape_of(name).unwrap();
            let mut seen = Vec::new();
            keys(&value, shape, name, &mut seen);
            let Shape::Fields(fields) = shape else { unreachable!() };
            for (field, _) in fields {
                assert!(
                    seen.contains(&format!("{name}.{field}")),
                    "`{name}.{field}` is declared but never bound"
                );
            }
        }
    }
}
