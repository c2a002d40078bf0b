//! Stage 4: CEL expressions — group selectors and guardrail rules.
//!
//! Each expression is parsed once; a syntax error is pointed at its line and
//! column inside the YAML file (the expression is a YAML scalar, plain, quoted or
//! a block, so its characters are mapped back through quotes, escapes and
//! indentation). `cel` has no type checker (an undeclared name fails only when
//! evaluated), so the names an expression reads are collected from its syntax
//! tree and checked here: a selector reads `user.email` and the attributes the
//! workspace declares; a guardrail reads `workspace`, the document it applies to
//! and `now`, and only their fields. The length cap is checked before the parser runs: a long operator
//! chain exhausts the parser's stack, and a stack overflow aborts the process.
//!
//! The types of what an expression reads are checked by [`super::types`], called
//! from here for each expression that parsed. Evaluating guardrails is
//! [`super::guardrail`]; evaluating selectors against a directory is [`crate::select`].

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use ::cel::common::ast::{EntryExpr, Expr, LiteralValue, SourceInfo};
use ::cel::{Env, IdedExpr, Program};

use super::guardrail::{self, Shape};
use super::types;
use crate::diag::{Code, Diagnostic, Location, Report, did_you_mean};
use crate::load::yaml::{Node, lowercase_first};
use crate::load::{Loaded, PolicySet, Rejected, node_location};
use crate::model::{AppliesTo, AttributeType, Kind, MAX_CEL_LEN};

/// A guardrail rule that parsed and reads only what it may.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The compiled rule.
    pub program: Arc<Program>,
    /// The names it reads: each variable with the fields selected from it, in source order.
    pub paths: Vec<(String, Vec<String>)>,
}

/// Identifiers CEL itself defines, which are not variables.
const CEL_NAMES: &[&str] =
    &["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"];

/// Checks every selector and rule; returns the compiled rules, one per guardrail
/// (`None` where the rule has an error).
///
/// `rejected` are the documents that failed the schema: their selectors and rules are
/// checked too, where the field itself has no schema finding, so a typo elsewhere in
/// the document does not hide a CEL error until it is fixed. They are never evaluated.
pub(crate) fn check(
    policies: &PolicySet,
    rejected: &[Loaded<Rejected>],
    env: &Arc<Env>,
    report: &mut Report,
) -> Vec<Option<Rule>> {
    let mut cx = Checks { policies, env, functions: Functions::new(env) };
    for group in &policies.groups {
        let Some(selector) = &group.doc.selector else { continue };
        cx.selector(group, &group.doc.name, selector, report);
    }
    for doc in rejected {
        match doc.doc.kind {
            Kind::Group => {
                let Some(selector) = doc.clean_str("selector") else { continue };
                cx.selector(doc, doc.clean_str("name").unwrap_or("?"), selector, report);
            }
            Kind::Guardrail => {
                let Some(rule) = doc.clean_str("rule") else { continue };
                let applies_to = doc.clean_str("applies_to").and_then(|a| {
                    serde_json::from_value::<AppliesTo>(serde_json::Value::String(a.to_owned())).ok()
                });
                cx.rule(doc, doc.clean_str("name").unwrap_or("?"), rule, applies_to, report);
            }
            Kind::Workspace | Kind::Override => {}
        }
    }
    policies
        .guardrails
        .iter()
        .map(|g| cx.rule(g, &g.doc.name, &g.doc.rule, Some(g.doc.applies_to), report))
        .collect()
}

/// What checking one expression needs.
struct Checks<'a, 'e> {
    policies: &'a PolicySet,
    env: &'e Arc<Env>,
    functions: Functions<'e>,
}

impl Checks<'_, '_> {
    fn selector<T>(&mut self, group: &Loaded<T>, name: &str, selector: &str, report: &mut Report) {
        let policies = self.policies;
        let attributes = policies.workspace().map(|w| (w, &w.doc.attributes));
        let expr = Expression::new(policies, group, "/selector", selector);
        let what = format!("the selector of group `{name}`");
        let Some(program) = expr.compile(self.env, &what, report) else { return };
        self.functions.check(&expr, &program, selector, report);
        let user = types::Ty::Record(Rc::new(
            std::iter::once(("email".to_owned(), types::Ty::String))
                .chain(attributes.into_iter().flat_map(|(_, declared)| {
                    declared.iter().map(|(name, t)| (name.clone(), attribute_type(*t)))
                }))
                .collect(),
        ));
        check_types(&expr, &program, selector, vec![("user".to_owned(), user)], &what, report);
        for r in references(program.expression(), program.source_info(), selector) {
            if r.root == "user" {
                let (Some((ws, declared)), Some((field, span))) = (attributes, r.fields.first()) else {
                    continue;
                };
                if field != "email" && !declared.contains_key(field) {
                    report.push(unknown_attribute(&expr, ws, declared, field, *span));
                }
            } else if !CEL_NAMES.contains(&r.root.as_str()) {
                report.push(
                    Diagnostic::error(Code::CelUnknownVariable, format!("unknown variable `{}`", r.root))
                        .at(expr.locate(r.root_span))
                        .with_label("not defined in a selector")
                        .with_help(match did_you_mean(&r.root, ["user"]) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "a selector reads the user it is evaluated on: `user.email` and \
                                     `user.<attribute>` for each attribute the workspace declares"
                                .into(),
                        }),
                );
            }
        }
    }

    /// Checks a guardrail's rule; the compiled rule when it has no error. Without a
    /// valid `applies_to` (already reported) only what does not depend on it is checked.
    fn rule<T>(
        &mut self,
        g: &Loaded<T>,
        name: &str,
        rule: &str,
        applies_to: Option<AppliesTo>,
        report: &mut Report,
    ) -> Option<Rule> {
        let expr = Expression::new(self.policies, g, "/rule", rule);
        let what = format!("the rule of guardrail `{name}`");
        let program = expr.compile(self.env, &what, report)?;
        let refs = references(program.expression(), program.source_info(), rule);
        let before = report.errors();
        self.functions.check(&expr, &program, rule, report);
        let var = applies_to.map(guardrail::variable);
        if let Some(var) = var {
            for r in &refs {
                check_rule_reference(&expr, var, r, report);
            }
        }
        let variables = var
            .into_iter()
            .chain(["workspace", "now"])
            .filter_map(|v| guardrail::shape_of(v).map(|s| (v.to_owned(), types::Ty::of_shape(s))))
            .collect();
        check_types(&expr, &program, rule, variables, &what, report);
        (report.errors() == before).then(|| Rule {
            paths: refs
                .into_iter()
                .map(|r| (r.root, r.fields.into_iter().map(|(f, _)| f).collect()))
                .collect(),
            program,
        })
    }
}

/// The CEL type of a declared directory attribute, as the selector interpreter binds it.
fn attribute_type(t: AttributeType) -> types::Ty {
    match t {
        AttributeType::String => types::Ty::String,
        AttributeType::List => types::Ty::List(Box::new(types::Ty::String)),
        AttributeType::Number => types::Ty::Double,
        AttributeType::Bool => types::Ty::Bool,
    }
}

/// Reports the static type errors of an expression, and an expression that is not a condition.
fn check_types(
    expr: &Expression<'_>,
    program: &Program,
    source: &str,
    variables: Vec<(String, types::Ty)>,
    what: &str,
    report: &mut Report,
) {
    let mut checker = types::Checker::new(program.source_info(), source, variables);
    let top = checker.check(program.expression());
    let found = !checker.errors.is_empty();
    for e in checker.errors {
        report.push(
            Diagnostic::error(Code::CelTypeMismatch, e.message)
                .at(expr.locate(e.span))
                .with_label(e.label)
                .with_help(e.help),
        );
    }
    if found || matches!(top, types::Ty::Bool | types::Ty::Dyn) {
        return;
    }
    report.push(
        Diagnostic::error(Code::CelNotACondition, format!("{what} is a {}, not a condition", top.name()))
            .at(expr.locate((0, source.trim_end().len())))
            .with_label(format!("a {}, never `true` or `false`", top.name()))
            .with_help(if what.starts_with("the selector") {
                "a selector is true or false for each user: compare the value, as in \
                 `user.department == \"Engineering\"`, or test a list with `\"x\" in user.idp_groups`"
            } else {
                "a rule is true or false for each document: compare the value, as in \
                 `override.add.credits <= 8000.0`"
            }),
    );
}

fn unknown_attribute(
    expr: &Expression<'_>,
    ws: &Loaded<crate::model::Workspace>,
    declared: &BTreeMap<String, AttributeType>,
    field: &str,
    span: (usize, usize),
) -> Diagnostic {
    let names = declared.keys().map(String::as_str).chain(["email"]);
    let mut d = Diagnostic::error(Code::CelUnknownAttribute, format!("unknown attribute `{field}`"))
        .at(expr.locate(span))
        .with_label("not declared in the workspace");
    d = match suggest(field, names.clone()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!(
            "declare it under `attributes:` in the workspace; selectors may read {}",
            names.map(|n| format!("`user.{n}`")).collect::<Vec<_>>().join(", ")
        )),
    };
    if ws.node.get("attributes").is_some() {
        d = d.with_secondary(ws.key_loc("attributes"), "the attributes the workspace declares");
    }
    d
}

fn check_rule_reference(expr: &Expression<'_>, var: &str, r: &Ref, report: &mut Report) {
    let allowed: &[&str] =
        if var == "workspace" { &["workspace", "now"] } else { &[var, "workspace", "now"] };
    if !allowed.contains(&r.root.as_str()) {
        if CEL_NAMES.contains(&r.root.as_str()) {
            return;
        }
        let sees = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
        report.push(
            Diagnostic::error(Code::CelUnknownVariable, format!("unknown variable `{}`", r.root))
                .at(expr.locate(r.root_span))
                .with_label(format!("not seen by a guardrail on {}", plural(var)))
                .with_help(match did_you_mean(&r.root, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("a guardrail with `applies_to: {var}` sees {sees}"),
                }),
        );
        return;
    }
    let Some(mut shape) = guardrail::shape_of(&r.root) else { return };
    let mut path = r.root.clone();
    for (field, span) in &r.fields {
        let Shape::Fields(fields) = shape else { return };
        let Some((_, next)) = fields.iter().find(|(name, _)| name == field) else {
            let names = fields.iter().map(|(n, _)| *n);
            let help = match suggest(field, names.clone()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => {
                    format!("`{path}` has {}", names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
                }
            };
            report.push(
                Diagnostic::error(Code::CelUnknownField, format!("`{path}` has no field `{field}`"))
                    .at(expr.locate(*span))
                    .with_label("unknown field")
                    .with_help(help),
            );
            return;
        };
        path = format!("{path}.{field}");
        shape = *next;
    }
}

/// The kind of document a guardrail applies to, in the plural.
fn plural(var: &str) -> &'static str {
    match var {
        "override" => "overrides",
        "group" => "groups",
        _ => "the workspace",
    }
}

/// The closest name to a misspelt one: a near edit, or two letters swapped (`titel`).
fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    did_you_mean(word, candidates.clone()).or_else(|| {
        let w: Vec<char> = word.chars().collect();
        candidates.into_iter().find(|c| {
            let c: Vec<char> = c.chars().collect();
            c.len() == w.len() && {
                let diff: Vec<usize> = (0..w.len()).filter(|&i| w[i] != c[i]).collect();
                matches!(diff.as_slice(), [i, j] if *j == i + 1 && w[*i] == c[*j] && w[*j] == c[*i])
            }
        })
    })
}

/// A CEL expression held in a YAML scalar, and how to point inside it.
struct Expression<'a> {
    file: &'a Arc<str>,
    commit: Option<&'a Arc<str>>,
    node: Option<&'a Node>,
    fallback: Location,
    /// The policies, to find the file's text when a finding needs it (rarely: not per expression).
    policies: &'a PolicySet,
    /// The expression as parsed (the scalar's value).
    value: &'a str,
}

impl<'a> Expression<'a> {
    fn new<T>(policies: &'a PolicySet, doc: &'a Loaded<T>, pointer: &str, value: &'a str) -> Self {
        Expression {
            file: &doc.file,
            commit: doc.commit.as_ref(),
            node: doc.node.pointer(pointer),
            fallback: doc.loc(pointer),
            policies,
            value,
        }
    }

    /// Parses the expression, reporting a syntax error or an expression too long to parse safely.
    ///
    /// A text the parse cache resolution shares ([`crate::select::cache`]) accepts is
    /// taken from it; any other is parsed with `env`, whose parser also reads CEL's
    /// optional syntax (`a.?b`), as validation always has.
    fn compile(&self, env: &Env, what: &str, report: &mut Report) -> Option<Arc<Program>> {
        if self.value.len() > MAX_CEL_LEN {
            // INVARIANT: checked before parsing; the parser recurses per operator.
            report.push(
                Diagnostic::error(
                    Code::CelTooLong,
                    format!("{what} is {} bytes long, more than {MAX_CEL_LEN}", self.value.len()),
                )
                .at(self.fallback.clone())
                .with_help(
                    "split the rule into several groups or guardrails; long expressions are hard to review \
                     and can exhaust the interpreter",
                ),
            );
            return None;
        }
        if let Ok(program) = crate::select::cache::program(self.value) {
            return Some(program);
        }
        match env.compile(self.value) {
            Ok(program) => Some(Arc::new(program)),
            Err(errors) => {
                let first = errors.errors.first()?;
                let (message, label) = clean_syntax_message(&first.msg);
                // An error at the end points just after the last character, not past trailing space.
                let at = byte_at(self.value, first.pos.0, first.pos.1).min(self.value.trim_end().len());
                let len = self.value.get(at..).and_then(|s| s.chars().next()).map_or(0, char::len_utf8);
                report.push(
                    Diagnostic::error(Code::CelSyntax, format!("{what} is not valid CEL: {message}"))
                        .at(self.locate((at, at + len)))
                        .with_label(label)
                        .with_help(
                            "CEL looks like `user.department == \"Engineering\" && !user.title.startsWith(\"Intern\")`; \
                             strings are quoted, `&&`, `||` and `!` combine conditions",
                        ),
                );
                None
            }
        }
    }

    /// The file location of a byte range of the expression.
    fn locate(&self, (start, end): (usize, usize)) -> Location {
        let text = self.policies.source(self.file).map(|s| &*s.text);
        let (Some(node), Some(text)) = (self.node, text) else { return self.fallback.clone() };
        let base = node_location(self.file, self.commit, node);
        let raw_start = node.pos.offset;
        let raw_end = if node.pos.len > 0 { raw_start + node.pos.len } else { text.len() };
        let Some(raw) = text.get(raw_start..raw_end.min(text.len())) else { return base };
        let map = align(raw, self.value, style(text, raw_start, raw, node.pos.column));
        let raw_at = |byte: usize| -> usize {
            let index = self.value.get(..byte).map_or(0, |s| s.chars().count());
            match map.get(index) {
                Some(&r) => r,
                // Past the end: just after the last character.
                None => map.last().map_or(0, |&r| r + raw[r..].chars().next().map_or(0, char::len_utf8)),
            }
        };
        let from = raw_at(start).min(raw.len());
        let to = if end > start { raw_at(end).max(from).min(raw.len()) } else { from };
        let (mut line, mut column) = (base.line, base.column);
        for c in raw[..from].chars() {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Location { line, column, offset: raw_start + from, len: to - from, ..base }
    }
}

/// How a YAML scalar is written, which decides how its text maps to its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>`, with the content's indentation in columns.
    Block(usize),
}

fn style(text: &str, raw_start: usize, raw: &str, column: u32) -> Style {
    match raw.chars().next() {
        Some('\'') => return Style::Single,
        Some('"') => return Style::Double,
        _ => {}
    }
    // A block scalar's content starts a line, below a header ending in `|` or `>`.
    let Some(before) = text.get(..raw_start) else { return Style::Plain };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    if !before[line_start..].chars().all(|c| c == ' ') {
        return Style::Plain;
    }
    let header = before[..line_start.saturating_sub(1)]
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.split(" #").next().unwrap_or(l).trim_end());
    match header.and_then(|h| h.split_whitespace().last()) {
        Some(token) if token.starts_with('|') || token.starts_with('>') => {
            Style::Block(column.saturating_sub(1) as usize)
        }
        _ => Style::Plain,
    }
}

/// For each character of a scalar's value, the byte offset in its raw text where
/// it was written. Quotes, escapes, folded line breaks and indentation are skipped.
fn align(raw: &str, value: &str, style: Style) -> Vec<usize> {
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let mut i = usize::from(matches!(style, Style::Single | Style::Double));
    let mut out = Vec::with_capacity(value.len());
    for c in value.chars() {
        loop {
            let Some(&(pos, r)) = chars.get(i) else {
                out.push(raw.len());
                break;
            };
            let next = chars.get(i + 1).map(|&(_, n)| n);
            if style == Style::Double && r == '\\' {
                if matches!(next, Some('\n' | '\r')) {
                    // An escaped line break joins lines: it stands for nothing.
                    i += 2;
                    while chars.get(i).is_some_and(|&(_, w)| matches!(w, ' ' | '\t' | '\n' | '\r')) {
                        i += 1;
                    }
                    continue;
                }
                out.push(pos);
                i += match next {
                    Some('x') => 4,
                    Some('u') => 6,
                    Some('U') => 10,
                    _ => 2,
                };
                break;
            }
            if style == Style::Single && r == '\'' && next == Some('\'') {
                out.push(pos);
                i += 2;
                break;
            }
            if r == c || (matches!(c, ' ' | '\n') && r == '\n') {
                out.push(pos);
                i += 1;
                if r == '\n' {
                    let mut skip = match style {
                        Style::Block(indent) => indent,
                        _ => usize::MAX,
                    };
                    while skip > 0
                        && chars.get(i).is_some_and(|&(_, w)| w == ' ' || (w == '\t' && skip == usize::MAX))
                    {
                        i += 1;
                        skip -= 1;
                    }
                }
                break;
            }
            i += 1;
        }
    }
    out
}

/// The byte offset of a 1-based line and column (in characters) of the parser.
fn byte_at(source: &str, line: isize, column: isize) -> usize {
    let line = usize::try_from(line).unwrap_or(1).max(1);
    let column = usize::try_from(column).unwrap_or(1).max(1);
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let within: usize = l.chars().take(column - 1).map(char::len_utf8).sum();
            return (offset + within).min(source.len());
        }
        offset += l.len();
    }
    source.len()
}

/// Turns the parser's message into ours: lowercase, short, with user input in backticks.
fn clean_syntax_message(msg: &str) -> (String, String) {
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    if msg.contains("Recursion limit") {
        return ("the expression nests too deeply".into(), "too deep".into());
    }
    let quoted = |rest: &str| -> String {
        // `'x' expecting {…}` → `x`
        let rest = rest.strip_prefix('\'').unwrap_or(rest);
        let end = rest.rfind("' expecting").or_else(|| rest.rfind('\'')).unwrap_or(rest.len());
        rest[..end].trim().to_string()
    };
    for prefix in ["mismatched input ", "extraneous input ", "no viable alternative at input "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let token = quoted(rest);
            if token == "<EOF>" || token.is_empty() {
                return ("unexpected end of expression".into(), "the expression ends too soon".into());
            }
            return (format!("unexpected `{token}`"), "unexpected here".into());
        }
    }
    if let Some(rest) = msg.strip_prefix("token recognition error at: ") {
        let token = quoted(rest);
        if token.starts_with('"') || token.starts_with('\'') {
            return ("unterminated string".into(), "this string has no closing quote".into());
        }
        return (format!("unexpected character `{token}`"), "not part of CEL".into());
    }
    if let Some(rest) = msg.strip_prefix("missing ") {
        // `')' at '<EOF>'` → `)`
        let token = rest.split('\'').nth(1).unwrap_or(rest);
        return (format!("missing `{token}`"), "expected here".into());
    }
    (lowercase_first(msg), "here".into())
}

/// A name an expression reads: a variable and the fields selected from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    root: String,
    /// Byte range of the variable in the expression.
    root_span: (usize, usize),
    /// Fields selected in turn (`user.department`, `user['department']`), with their byte ranges.
    fields: Vec<(String, (usize, usize))>,
}

/// Every free variable an expression reads, with the fields selected from it, in source order.
fn references(expr: &IdedExpr, info: &SourceInfo, source: &str) -> Vec<Ref> {
    let mut out = Vec::new();
    walk(expr, info, source, &mut Vec::new(), &mut out);
    out.sort_by_key(|r| r.root_span);
    out.dedup();
    out
}

fn span(info: &SourceInfo, id: u64, source: &str) -> (usize, usize) {
    info.offset_for(id).map_or((0, 0), |(start, stop)| {
        let start = (start as usize).min(source.len());
        (start, (stop as usize + 1).clamp(start, source.len()))
    })
}

/// One step of a name: `.field` or `['field']`.
enum Step<'e> {
    Field(&'e str),
    Key(&'e str, u64),
}

/// A variable and the fields selected from it, when the expression is just that.
fn name_chain(expr: &IdedExpr) -> Option<(&str, u64, Vec<Step<'_>>)> {
    let mut steps = Vec::new();
    let mut e = expr;
    loop {
        match &e.expr {
            Expr::Ident(name) => {
                steps.reverse();
                return Some((name, e.id, steps));
            }
            Expr::Select(s) => {
                steps.push(Step::Field(&s.field));
                e = &s.operand;
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.target.is_none() && c.args.len() == 2 => {
                let Expr::Literal(LiteralValue::String(key)) = &c.args[1].expr else { return None };
                steps.push(Step::Key(key.inner(), c.args[1].id));
                e = &c.args[0];
            }
            _ => return None,
        }
    }
}

fn walk(expr: &IdedExpr, info: &SourceInfo, source: &str, bound: &mut Vec<String>, out: &mut Vec<Ref>) {
    if let Some((root, id, steps)) = name_chain(expr) {
        if !bound.iter().any(|b| b == root) {
            let root_span = span(info, id, source);
            let mut cursor = root_span.1;
            let fields = steps
                .iter()
                .map(|step| {
                    let (name, range) = match step {
                        Step::Field(name) => {
                            let at = source
                                .get(cursor..)
                                .and_then(|s| s.find(name))
                                .map_or(cursor, |i| cursor + i);
                            (*name, (at, at + name.len()))
                        }
                        Step::Key(name, id) => {
                            let (s, e) = span(info, *id, source);
                            let at = source.get(s..e).and_then(|t| t.find(name)).map_or(s, |i| s + i);
                            (*name, (at, (at + name.len()).min(source.len())))
                        }
                    };
                    cursor = range.1.max(cursor);
                    (name.to_string(), range)
                })
                .collect();
            out.push(Ref { root: root.to_string(), root_span, fields });
        }
        return;
    }
    match &expr.expr {
        Expr::Select(s) => walk(&s.operand, info, source, bound, out),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, info, source, bound, out);
            }
            for a in &c.args {
                walk(a, info, source, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, info, source, bound, out);
            walk(&c.accu_init, info, source, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for e in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(e, info, source, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::List(l) => l.elements.iter().for_each(|e| walk(e, info, source, bound, out)),
        Expr::Map(m) => m.entries.iter().for_each(|e| walk_entry(&e.expr, info, source, bound, out)),
        Expr::Struct(s) => s.entries.iter().for_each(|e| walk_entry(&e.expr, info, source, bound, out)),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Every function called by name (not operators, not macros), with the byte range of its name.
fn function_calls(expr: &IdedExpr, info: &SourceInfo, source: &str, out: &mut Vec<(String, (usize, usize))>) {
    let mut children: Vec<&IdedExpr> = Vec::new();
    match &expr.expr {
        Expr::Call(c) => {
            let name = c.func_name.as_str();
            if !name.starts_with(['_', '@', '!', '-']) && !MACROS.contains(&name) {
                // The call's position is its `(`; the name ends there.
                let (paren, _) = span(info, expr.id, source);
                let start = source
                    .get(..paren)
                    .and_then(|before| before.trim_end().strip_suffix(name).map(str::len))
                    .unwrap_or(paren);
                out.push((name.to_string(), (start, (start + name.len()).min(source.len()))));
            }
            children.extend(c.target.as_deref());
            children.extend(&c.args);
        }
        Expr::Select(s) => children.push(&s.operand),
        Expr::Comprehension(c) => {
            children.extend([&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result])
        }
        Expr::List(l) => children.extend(&l.elements),
        Expr::Map(m) => children.extend(m.entries.iter().flat_map(|e| entry_children(&e.expr))),
        Expr::Struct(st) => children.extend(st.entries.iter().flat_map(|e| entry_children(&e.expr))),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    for child in children {
        function_calls(child, info, source, out);
    }
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        EntryExpr::StructField(f) => vec![&f.value],
    }
}

/// Whether the standard environment defines a function, globally or as a method.
///
/// `cel` has no public list of its functions; calling one with no arguments tells:
/// an unknown name is an undeclared reference, a known one a missing overload.
struct Functions<'e> {
    env: &'e Env,
    ctx: ::cel::Context<'static, 'static>,
    known: HashMap<String, bool>,
}

impl<'e> Functions<'e> {
    fn new(env: &'e Arc<Env>) -> Self {
        Functions { env, ctx: ::cel::Context::with_env(env.clone()), known: HashMap::new() }
    }

    fn exists(&mut self, name: &str) -> bool {
        if let Some(known) = self.known.get(name) {
            return *known;
        }
        let defined = ["{}()", "''.{}()"].iter().any(|shape| {
            let probe = shape.replace("{}", name);
            match self.env.compile(&probe) {
                Ok(program) => !matches!(
                    program.execute(&self.ctx),
                    Err(::cel::ExecutionError::UndeclaredReference(ref n)) if n.as_str() == name
                ),
                // Not an identifier CEL can call: leave it to the evaluator.
                Err(_) => true,
            }
        });
        self.known.insert(name.to_string(), defined);
        defined
    }

    /// Reports every call of an unknown function; true when there was one.
    fn check(&mut self, expr: &Expression<'_>, program: &Program, source: &str, report: &mut Report) -> bool {
        let mut calls = Vec::new();
        function_calls(program.expression(), program.source_info(), source, &mut calls);
        let mut found = false;
        for (name, span) in calls {
            if self.exists(&name) {
                continue;
            }
            found = true;
            report.push(
                Diagnostic::error(Code::CelUnknownFunction, format!("unknown function `{name}`"))
                    .at(expr.locate(span))
                    .with_label("not a CEL function")
                    .with_help(match suggest(&name, STANDARD_FUNCTIONS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "the functions are CEL's standard ones: {}",
                            STANDARD_FUNCTIONS
                                .iter()
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
            );
        }
        found
    }
}

/// Macros: expanded by the parser, so a call left by that name is a wrong use the evaluator reports.
const MACROS: &[&str] = &["has", "all", "exists", "exists_one", "map", "filter", "optMap", "optFlatMap"];

/// CEL's standard functions, for suggestions.
const STANDARD_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "timestamp",
    "duration",
    "dyn",
    "type",
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

fn walk_entry(
    entry: &EntryExpr,
    info: &SourceInfo,
    source: &str,
    bound: &mut Vec<String>,
    out: &mut Vec<Ref>,
) {
    match entry {
        EntryExpr::MapEntry(m) => {
            walk(&m.key, info, source, bound, out);
            walk(&m.value, info, source, bound, out);
        }
        EntryExpr::StructField(f) => walk(&f.value, info, source, bound, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::test_support::{WORKSPACE, run, summary};

    const NOW: &str = "2026-11-20T12:00:00Z";

    fn group(selector_line: &str) -> String {
        format!("apiVersion: budgit/v1\nkind: Group\nname: eng\n{selector_line}\nlimit: {{ credits: 10 }}\n")
    }

    fn check_group(selector_line: &str) -> Vec<String> {
        summary(&run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group(selector_line))], NOW))
    }

    #[test]
    fn syntax_errors_point_into_the_yaml_file() {
        // Column of the `)`: plain, quoted (one more for the quote), escaped, and in blocks.
        assert_eq!(check_group("selector: user.title == )"), ["cel/syntax g.yaml:4:25"]);
        assert_eq!(check_group("selector: 'user.title == )'"), ["cel/syntax g.yaml:4:26"]);
        assert_eq!(check_group("selector: 'user.title == ''x'' )'"), ["cel/syntax g.yaml:4:32"]);
        assert_eq!(check_group("selector: \"user.title == \\\"x\\\" )\""), ["cel/syntax g.yaml:4:32"]);
        assert_eq!(check_group("selector: |\n  user.title == 'x'\n    && )"), ["cel/syntax g.yaml:6:8"]);
        assert_eq!(check_group("selector: >-\n  user.title == 'x'\n  && )"), ["cel/syntax g.yaml:6:6"]);
        assert_eq!(
            check_group("selector:   # the rule\n  user.title == 'x'\n  && )"),
            ["cel/syntax g.yaml:6:6"]
        );
    }

    #[test]
    fn syntax_error_messages_are_ours() {
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group("selector: 'user.title == '"))], NOW);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "the selector of group `eng` is not valid CEL: unexpected end of expression");
        // Just after the last token, not after the trailing space.
        assert_eq!(d.location.as_ref().unwrap().column, 25);
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group("selector: 'user.title == \"x'"))], NOW);
        assert!(report.diagnostics[0].message.ends_with("unterminated string"), "{:?}", report.diagnostics);
        let deep = format!("selector: '{}true{}'", "(".repeat(200), ")".repeat(200));
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group(&deep))], NOW);
        assert!(report.diagnostics[0].message.ends_with("nests too deeply"), "{:?}", report.diagnostics);
    }

    #[test]
    fn selectors_read_declared_attributes_only() {
        let line = "selector: 'user.department == \"x\" && user.titel.startsWith(\"y\")'";
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group(line))], NOW);
        assert_eq!(summary(&report), ["cel/unknown-attribute g.yaml:4:43"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "unknown attribute `titel`");
        assert_eq!(d.help.as_deref(), Some("did you mean `title`?"));
        assert_eq!(d.location.as_ref().unwrap().len, 5);
        assert_eq!(d.labels[0].location.line, 7);
    }

    #[test]
    fn references_follow_index_presence_and_macros() {
        assert_eq!(
            check_group("selector: \"user['cost_center'] == 'x'\""),
            ["cel/unknown-attribute g.yaml:4:18"]
        );
        assert_eq!(check_group("selector: has(user.manager)"), ["cel/unknown-attribute g.yaml:4:20"]);
        // Loop variables are not free variables; `email` is always there.
        assert!(
            check_group("selector: \"[user.title].exists(t, t == 'x') && user.email.endsWith('@acme.com')\"")
                .is_empty()
        );
        assert_eq!(
            check_group("selector: \"[1].all(x, x > 0) && x == 1\""),
            ["cel/unknown-variable g.yaml:4:33"]
        );
        assert_eq!(check_group("selector: usr.title == 'x'"), ["cel/unknown-variable g.yaml:4:11"]);
    }

    #[test]
    fn guardrails_read_their_document_workspace_and_now() {
        let rule = |applies: &str, rule: &str| {
            format!(
                "apiVersion: budgit/v1\nkind: Guardrail\nname: r\napplies_to: {applies}\nrule: '{rule}'\nmessage: m\n"
            )
        };
        let ok =
            rule("override", "!has(override.add) || override.add.credits <= 4.0 * workspace.default.credits");
        assert!(summary(&run(&[("ws.yaml", WORKSPACE), ("r.yaml", &ok)], NOW)).is_empty());
        let ok = rule("override", "override.expires < now + duration(\"2160h\")");
        assert!(summary(&run(&[("ws.yaml", WORKSPACE), ("r.yaml", &ok)], NOW)).is_empty());
        let bad = rule("override", "group.limit.credits > 0.0");
        let report = run(&[("ws.yaml", WORKSPACE), ("r.yaml", &bad)], NOW);
        assert_eq!(summary(&report), ["cel/unknown-variable r.yaml:5:8"]);
        let bad = rule("group", "group.limit.credit > 0.0 && workspace.defaults.credits > 0.0");
        let report = run(&[("ws.yaml", WORKSPACE), ("r.yaml", &bad)], NOW);
        assert_eq!(summary(&report), ["cel/unknown-field r.yaml:5:20", "cel/unknown-field r.yaml:5:46"]);
        assert_eq!(report.diagnostics[0].message, "`group.limit` has no field `credit`");
        assert_eq!(report.diagnostics[0].help.as_deref(), Some("did you mean `credits`?"));
    }

    #[test]
    fn unknown_functions_are_found_before_evaluation() {
        let report = run(
            &[
                ("ws.yaml", WORKSPACE),
                ("g.yaml", &group("selector: user.title.startswith('VP') && size(user.title) > 2")),
            ],
            NOW,
        );
        assert_eq!(summary(&report), ["cel/unknown-function g.yaml:4:22"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.help.as_deref(), Some("did you mean `startsWith`?"));
        assert_eq!(d.location.as_ref().unwrap().len, "startswith".len());
        // Standard functions, methods, conversions and macros are known.
        let ok = "selector: \"user.title.endsWith('x') && user.title.matches('^V') && int('1') == 1 && \
                  [user.title].exists(t, t.contains('P')) && has(user.department)\"";
        assert!(check_group(ok).is_empty(), "{:?}", check_group(ok));
    }

    #[test]
    fn a_selector_must_be_a_condition() {
        // A string selector validated clean and then matched nobody.
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group("selector: 'user.department'"))], NOW);
        assert_eq!(summary(&report), ["cel/not-a-condition g.yaml:4:12"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "the selector of group `eng` is a string, not a condition");
        assert_eq!(d.location.as_ref().unwrap().len, "user.department".len());
        assert!(
            check_group("selector: size(user.title)").contains(&"cel/not-a-condition g.yaml:4:11".to_owned())
        );
        assert!(check_group("selector: user.title == 'x' || user.department == 'y'").is_empty());
    }

    #[test]
    fn type_errors_point_into_the_yaml_scalar() {
        // The declared types: `department` and `title` are strings.
        assert_eq!(check_group("selector: 'user.department == 5'"), ["cel/type-mismatch g.yaml:4:28"]);
        assert_eq!(
            check_group("selector: |\n  user.title != ''\n  && user.title > 3"),
            ["cel/type-mismatch g.yaml:6:17"]
        );
        assert_eq!(check_group("selector: \"size(1) > 0\""), ["cel/type-mismatch g.yaml:4:12"]);
        assert_eq!(
            check_group("selector: user.title.exists(c, c == 'V')"),
            ["cel/type-mismatch g.yaml:4:22"]
        );
        assert_eq!(check_group("selector: \"'VP' in user.title\""), ["cel/type-mismatch g.yaml:4:17"]);
        assert_eq!(check_group("selector: user.title + 1 == 'x'"), ["cel/type-mismatch g.yaml:4:22"]);
        let report =
            run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group("selector: 'user.department == 5'"))], NOW);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "`==` compares string with int: it is never true");
        assert_eq!(d.location.as_ref().unwrap().len, 2);
    }

    #[test]
    fn declared_list_number_and_bool_attributes_have_their_types() {
        let ws = WORKSPACE.replace(
            "  title: string\n",
            "  title: string\n  groups: list\n  level: number\n  contractor: bool\n",
        );
        let check = |line: &str| summary(&run(&[("ws.yaml", &ws), ("g.yaml", &group(line))], NOW));
        assert!(
            check("selector: \"'eng' in user.groups && user.level >= 3 && !user.contractor\"").is_empty()
        );
        assert_eq!(check("selector: \"user.groups.contains('eng')\""), ["cel/type-mismatch g.yaml:4:24"]);
        assert_eq!(check("selector: \"user.level == 'senior'\""), ["cel/type-mismatch g.yaml:4:23"]);
        assert_eq!(check("selector: \"user.contractor == 'yes'\""), ["cel/type-mismatch g.yaml:4:28"]);
        // An attribute the workspace does not declare is reported once, as unknown, not as a type error.
        assert_eq!(check("selector: \"user.manager == 5\""), ["cel/unknown-attribute g.yaml:4:17"]);
    }

    #[test]
    fn guardrails_are_typed_from_the_model() {
        let rule = |applies: &str, rule: &str| {
            let g = format!(
                "apiVersion: budgit/v1\nkind: Guardrail\nname: r\napplies_to: {applies}\nrule: \"{rule}\"\nmessage: m\n"
            );
            summary(&run(&[("ws.yaml", WORKSPACE), ("r.yaml", &g)], NOW))
        };
        assert!(rule("group", "size(group.members) <= 50 && group.priority < 100").is_empty());
        assert!(rule("override", "override.expires - now < duration('2160h')").is_empty());
        assert_eq!(rule("group", "group.members.startsWith('a')"), ["cel/type-mismatch r.yaml:5:22"]);
        assert_eq!(rule("group", "group.name == 3"), ["cel/type-mismatch r.yaml:5:19"]);
        assert_eq!(rule("override", "override.expires < 5"), ["cel/type-mismatch r.yaml:5:25"]);
        assert_eq!(rule("workspace", "workspace.name"), ["cel/not-a-condition r.yaml:5:8"]);
    }

    #[test]
    fn a_schema_error_does_not_hide_a_cel_error_in_the_same_document() {
        // The typo in `priorty` used to hide the selector's syntax error until it was fixed.
        let g = "apiVersion: budgit/v1\nkind: Group\nname: eng\nselector: user.title == )\npriorty: 3\nlimit: { credits: 10 }\n";
        assert_eq!(
            summary(&run(&[("ws.yaml", WORKSPACE), ("g.yaml", g)], NOW)),
            ["cel/syntax g.yaml:4:25", "schema/unknown-field g.yaml:5:1"]
        );
        let typed = g.replace("user.title == )", "user.titel == 5");
        assert_eq!(
            summary(&run(&[("ws.yaml", WORKSPACE), ("g.yaml", &typed)], NOW)),
            ["cel/unknown-attribute g.yaml:4:16", "schema/unknown-field g.yaml:5:1"]
        );
        let r = "apiVersion: budgit/v1\nkind: Guardrail\nname: r\napplies_to: override\nrule: 'override.ad.credits > 1.0'\nmesage: m\n";
        let found = summary(&run(&[("ws.yaml", WORKSPACE), ("r.yaml", r)], NOW));
        assert!(found.contains(&"cel/unknown-field r.yaml:5:17".to_owned()), "{found:?}");
        // A selector that is itself what the schema refuses is reported once, by the schema.
        let wrong = g.replace("selector: user.title == )", "selector: [1]");
        let found = summary(&run(&[("ws.yaml", WORKSPACE), ("g.yaml", &wrong)], NOW));
        assert!(found.iter().all(|f| f.starts_with("schema/")), "{found:?}");
    }

    #[test]
    fn the_length_cap_holds_in_code_too() {
        // 600 two-byte characters pass the schema's character count but not the byte cap.
        let line = format!("selector: \"user.title == '{}'\"", "é".repeat(600));
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group(&line))], NOW);
        assert_eq!(summary(&report), ["cel/too-long g.yaml:4:11"]);
    }

    #[test]
    fn a_long_operator_chain_is_refused_before_parsing() {
        let line = format!("selector: '{}1 == 1'", "1 + ".repeat(25_000));
        assert!(line.len() > 100_000);
        let started = std::time::Instant::now();
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", &group(&line))], NOW);
        assert_eq!(summary(&report), ["cel/too-long g.yaml:4:11"]);
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn alignment_maps_every_character() {
        assert_eq!(align("'a''b'", "a'b", Style::Single), [1, 2, 4]);
        assert_eq!(align("\"a\\tb\\u00e9\"", "a\tbé", Style::Double), [1, 2, 4, 5]);
        assert_eq!(align("\"a \\\n   b\"", "a b", Style::Double), [1, 2, 8]);
        assert_eq!(align("a\n  b", "a b", Style::Plain), [0, 1, 4]);
        assert_eq!(align("a\n    b\n", "a\n  b\n", Style::Block(2)), [0, 1, 4, 5, 6, 7]);
        assert_eq!(align("ab", "abc", Style::Plain), [0, 1, 2]);
    }

    #[test]
    fn parser_positions_become_byte_offsets() {
        assert_eq!(byte_at("é == )", 1, 6), 6);
        assert_eq!(byte_at("a\nbc )", 2, 4), 5);
        assert_eq!(byte_at("a", 0, 0), 0);
        assert_eq!(byte_at("a", 9, 9), 1);
    }
}
