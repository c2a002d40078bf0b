//! Static types of CEL expressions: a small checker over the parsed syntax tree.
//!
//! `cel` evaluates without checking types first, and several mistakes do not even
//! fail when they run: `user.department == 5` is simply false for everyone, and a
//! selector that is a string (`user.department`) matches nobody. This module gives
//! every node a type from what the variables hold (a selector's `user` from the
//! attributes the workspace declares, a guardrail's documents from their model)
//! and reports what cannot work: a selector or rule that is not a condition,
//! comparisons of values that are never equal, arithmetic on the wrong types,
//! `size()` of a number, `in` or a macro over something that is not a list or a
//! map, a string function on a list. Anything whose type is not known statically
//! is `dyn` and accepted: the checker reports only what is certain to be wrong.
//! Which names exist is [`super::cel`]'s check, not this one.

use std::rc::Rc;

use ::cel::IdedExpr;
use ::cel::common::ast::{EntryExpr, Expr, LiteralValue, SourceInfo};

use super::guardrail::{Leaf, Shape};

/// A CEL type, as far as it is known before evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// Not known statically: never an error.
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    /// A type value (`string`, `type(x)`).
    Type,
    List(Box<Ty>),
    /// A map with keys and values of these types.
    Map(Box<Ty>, Box<Ty>),
    /// A map with known fields (a document, or the user): a field not listed is `dyn`.
    Record(Rc<Vec<(String, Ty)>>),
}

impl Ty {
    /// The type of a value bound from the model.
    pub(crate) fn of_shape(shape: Shape) -> Ty {
        match shape {
            Shape::Leaf(leaf) => Ty::of_leaf(leaf),
            Shape::Map(leaf) => Ty::Map(Box::new(Ty::String), Box::new(Ty::of_leaf(leaf))),
            Shape::Fields(fields) => {
                Ty::Record(Rc::new(fields.iter().map(|(n, s)| ((*n).to_owned(), Ty::of_shape(*s))).collect()))
            }
        }
    }

    fn of_leaf(leaf: Leaf) -> Ty {
        match leaf {
            Leaf::String => Ty::String,
            Leaf::Int => Ty::Int,
            Leaf::Double => Ty::Double,
            Leaf::Bool => Ty::Bool,
            Leaf::Timestamp => Ty::Timestamp,
            Leaf::Strings => Ty::List(Box::new(Ty::String)),
            Leaf::Ints => Ty::List(Box::new(Ty::Int)),
        }
    }

    /// The type as CEL names it, for messages.
    pub(crate) fn name(&self) -> String {
        match self {
            Ty::Dyn => "dyn".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Duration => "duration".into(),
            Ty::Type => "type".into(),
            Ty::List(e) if **e == Ty::Dyn => "list".into(),
            Ty::List(e) => format!("list({})", e.name()),
            Ty::Map(k, v) => format!("map({}, {})", k.name(), v.name()),
            Ty::Record(_) => "map".into(),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    /// True when values of the two types can be equal (`==` is not always false).
    fn can_equal(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
            (a, b) if a.numeric() && b.numeric() => true,
            (Ty::List(_), Ty::List(_)) => true,
            (Ty::Map(..) | Ty::Record(_), Ty::Map(..) | Ty::Record(_)) => true,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// True when `<` and friends are defined between the two types.
    fn can_order(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::Dyn, _) | (_, Ty::Dyn) => true,
            (a, b) if a.numeric() && b.numeric() => true,
            (Ty::String, Ty::String)
            | (Ty::Bytes, Ty::Bytes)
            | (Ty::Bool, Ty::Bool)
            | (Ty::Timestamp, Ty::Timestamp)
            | (Ty::Duration, Ty::Duration) => true,
            _ => false,
        }
    }
}

/// A static type error: what, where (a byte range of the expression) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeError {
    pub message: String,
    pub label: String,
    pub help: String,
    pub span: (usize, usize),
}

/// The checker's state for one expression.
pub(crate) struct Checker<'a> {
    info: &'a SourceInfo,
    source: &'a str,
    /// Variables in scope, innermost last.
    scope: Vec<(String, Ty)>,
    /// Every error found, in the order met.
    pub errors: Vec<TypeError>,
}

/// Identifiers that name types.
const TYPE_NAMES: &[&str] =
    &["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"];

const MIXED: &str =
    "CEL never mixes int and double in arithmetic: write `4.0`, not `4`, or convert with `double()`";

impl<'a> Checker<'a> {
    /// A checker for `source` whose free variables have the given types (others are `dyn`).
    pub(crate) fn new(info: &'a SourceInfo, source: &'a str, variables: Vec<(String, Ty)>) -> Self {
        Checker { info, source, scope: variables, errors: Vec::new() }
    }

    fn span(&self, id: u64) -> (usize, usize) {
        self.info.offset_for(id).map_or((0, 0), |(start, stop)| {
            let start = (start as usize).min(self.source.len());
            (start, (stop as usize + 1).clamp(start, self.source.len()))
        })
    }

    /// The range of the operator of a binary call: the call's own position when it
    /// is the operator, else the text between its two operands.
    fn operator_span(&self, call: &IdedExpr, op: &str, left: &IdedExpr, right: &IdedExpr) -> (usize, usize) {
        let (start, end) = self.span(call.id);
        if self.source.get(start..).is_some_and(|s| s.starts_with(op)) {
            return (start, start + op.len());
        }
        let from = self.end_of(left);
        let to = self.span(right.id).0;
        match self.source.get(from..to).and_then(|between| between.find(op)) {
            Some(i) => (from + i, from + i + op.len()),
            None => (start, end),
        }
    }

    /// The byte just after the text of `expr`: its own position is only its first
    /// token (the `.` of a field, the `(` of a call), so the children are looked at too.
    fn end_of(&self, expr: &IdedExpr) -> usize {
        let own = self.span(expr.id).1;
        match &expr.expr {
            Expr::Select(s) => {
                let operand = self.end_of(&s.operand);
                let at = own.saturating_sub(1).max(operand);
                let field =
                    self.source.get(at..).and_then(|rest| rest.find(s.field.as_str())).map(|i| at + i);
                field.map_or(own.max(operand), |f| f + s.field.len())
            }
            Expr::Call(c) => {
                c.target.iter().map(|t| &**t).chain(&c.args).map(|e| self.end_of(e)).fold(own, usize::max)
            }
            Expr::List(l) => l.elements.iter().map(|e| self.end_of(e)).fold(own, usize::max),
            _ => own,
        }
    }

    /// The byte range of the whole text of `expr`.
    fn extent(&self, expr: &IdedExpr) -> (usize, usize) {
        let own = self.span(expr.id).0;
        let start = match &expr.expr {
            Expr::Select(s) => self.extent(&s.operand).0,
            Expr::Call(c) => {
                c.target.iter().map(|t| &**t).chain(&c.args).map(|e| self.extent(e).0).fold(own, usize::min)
            }
            _ => own,
        };
        (start, self.end_of(expr).max(start))
    }

    /// The range of a function or macro name written right after `after` (`.name(`).
    fn name_after(&self, after: usize, name: Option<&str>) -> (usize, usize) {
        let rest = self.source.get(after..).unwrap_or("");
        let skip = rest.len() - rest.trim_start_matches(['.', ' ', '\t', '\n', '\r', ')']).len();
        let start = after + skip;
        let len = match name {
            Some(n) if rest[skip..].starts_with(n) => n.len(),
            _ => rest[skip..].find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len() - skip),
        };
        (start, start + len)
    }

    fn error(&mut self, span: (usize, usize), message: String, label: &str, help: impl Into<String>) -> Ty {
        self.errors.push(TypeError { message, label: label.into(), help: help.into(), span });
        Ty::Dyn
    }

    /// The predicate of `exists`, `all`, `filter` or `exists_one` that is not a condition
    /// (the parser expanded the macro into `&&`, `||` or `? :` the author never wrote).
    fn macro_predicate(&mut self, span: (usize, usize), t: &Ty) {
        self.error(
            span,
            format!("the condition of the macro is {}, not true or false", t.name()),
            "not true or false",
            "the second argument of `exists`, `all`, `exists_one` and `filter` is a condition on each \
             element, as in `user.idp_groups.exists(g, g.startsWith(\"eng-\"))`",
        );
    }

    fn lookup(&self, name: &str) -> Ty {
        if let Some((_, t)) = self.scope.iter().rev().find(|(n, _)| n == name) {
            return t.clone();
        }
        if TYPE_NAMES.contains(&name) { Ty::Type } else { Ty::Dyn }
    }

    /// The type of `expr`, reporting every error in it; `dyn` where an error was found,
    /// so one mistake is reported once.
    pub(crate) fn check(&mut self, expr: &IdedExpr) -> Ty {
        match &expr.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.lookup(name),
            Expr::Select(s) => {
                let operand = self.check(&s.operand);
                if s.test {
                    return Ty::Bool;
                }
                self.field(&operand, &s.field, expr)
            }
            Expr::List(l) => {
                let types: Vec<Ty> = l.elements.iter().map(|e| self.check(e)).collect();
                Ty::List(Box::new(common(&types)))
            }
            Expr::Map(m) => {
                let mut keys = Vec::new();
                let mut values = Vec::new();
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        keys.push(self.check(&e.key));
                        values.push(self.check(&e.value));
                    }
                }
                Ty::Map(Box::new(common(&keys)), Box::new(common(&values)))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.check(&f.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range);
                let (first, second) = match &range {
                    Ty::List(e) => (Ty::Int, (**e).clone()),
                    Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
                    Ty::Record(_) => (Ty::String, Ty::Dyn),
                    Ty::Dyn => (Ty::Dyn, Ty::Dyn),
                    other => {
                        let span = self.name_after(self.end_of(&c.iter_range), None);
                        let name = self.source.get(span.0..span.1).unwrap_or("").to_owned();
                        let message = format!("`{name}` needs a list or a map, not {}", other.name());
                        let help = match other {
                            Ty::String => {
                                "a string is not a list: compare it (`==`), or test it with `contains()`, `startsWith()` or `matches()`"
                            }
                            _ => "macros such as `exists`, `all` and `filter` loop over a list or a map",
                        };
                        self.error(span, message, "not a list or a map", help);
                        (Ty::Dyn, Ty::Dyn)
                    }
                };
                // One variable: the element of a list, the key of a map; two: index and element, key and value.
                let (var, var2) = match (&c.iter_var2, &range) {
                    (Some(_), _) => (first, Some(second)),
                    (None, Ty::List(_)) => (second, None),
                    (None, _) => (first, None),
                };
                let depth = self.scope.len();
                let init = self.check(&c.accu_init);
                self.scope.push((c.accu_var.clone(), init));
                self.scope.push((c.iter_var.clone(), var));
                if let (Some(name), Some(t)) = (&c.iter_var2, var2) {
                    self.scope.push((name.clone(), t));
                }
                self.check(&c.loop_cond);
                self.check(&c.loop_step);
                self.scope.truncate(depth + 1);
                let result = self.check(&c.result);
                self.scope.truncate(depth);
                result
            }
            Expr::Call(call) => self.call(expr, call),
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn field(&mut self, operand: &Ty, field: &str, expr: &IdedExpr) -> Ty {
        match operand {
            Ty::Record(fields) => fields.iter().find(|(n, _)| n == field).map_or(Ty::Dyn, |(_, t)| t.clone()),
            Ty::Map(_, v) => (**v).clone(),
            Ty::Dyn => Ty::Dyn,
            other => {
                let (at, _) = self.span(expr.id);
                let start = self.source.get(at..).and_then(|s| s.find(field)).map_or(at, |i| at + i);
                self.error(
                    (start, (start + field.len()).min(self.source.len())),
                    format!("{} has no field `{field}`", other.name()),
                    "not a map",
                    "only maps and documents have fields",
                )
            }
        }
    }

    fn call(&mut self, expr: &IdedExpr, call: &::cel::common::ast::CallExpr) -> Ty {
        let name = call.func_name.as_str();
        let target = call.target.as_deref().map(|t| (t, self.check(t)));
        let args: Vec<Ty> = call.args.iter().map(|a| self.check(a)).collect();
        match (name, args.as_slice()) {
            ("_&&_" | "_||_", [a, b]) => {
                let op = if name == "_&&_" { "&&" } else { "||" };
                let in_macro = call.args.iter().any(is_accumulator);
                for (t, arg) in [(a, &call.args[0]), (b, &call.args[1])] {
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        let span = self.extent(arg);
                        if in_macro {
                            self.macro_predicate(span, t);
                            continue;
                        }
                        self.error(
                            span,
                            format!("`{op}` needs conditions on both sides, not {}", t.name()),
                            "not true or false",
                            "compare the value, as in `user.department == \"Engineering\"`",
                        );
                    }
                }
                Ty::Bool
            }
            ("!_", [a]) => {
                if !matches!(a, Ty::Bool | Ty::Dyn) {
                    let span = self.span(expr.id);
                    self.error(
                        span,
                        format!("`!` needs a condition, not {}", a.name()),
                        "not true or false",
                        "`!` negates a condition, as in `!user.title.startsWith(\"Intern\")`",
                    );
                }
                Ty::Bool
            }
            ("-_", [a]) => match a {
                Ty::Int | Ty::Double | Ty::Duration | Ty::Dyn => a.clone(),
                other => {
                    let span = self.span(expr.id);
                    self.error(
                        span,
                        format!("`-` cannot negate {}", other.name()),
                        "not a signed number",
                        "only ints, doubles and durations have a sign",
                    )
                }
            },
            ("_?_:_", [c, t, f]) => {
                if !matches!(c, Ty::Bool | Ty::Dyn) {
                    let span = self.extent(&call.args[0]);
                    if call.args[1..].iter().any(mentions_accumulator) {
                        self.macro_predicate(span, c);
                    } else {
                        self.error(
                            span,
                            format!("the condition of `? :` is {}, not a condition", c.name()),
                            "not true or false",
                            "write a comparison before `?`",
                        );
                    }
                }
                if t == f { t.clone() } else { Ty::Dyn }
            }
            ("_==_" | "_!=_", [a, b]) => {
                if !a.can_equal(b) {
                    let op = &name[1..3];
                    let span = self.operator_span(expr, op, &call.args[0], &call.args[1]);
                    let never = if op == "==" { "never true" } else { "always true" };
                    self.error(
                        span,
                        format!("`{op}` compares {} with {}: it is {never}", a.name(), b.name()),
                        "values of different types",
                        hint(a, b),
                    );
                }
                Ty::Bool
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
                if !a.can_order(b) {
                    let op = name.trim_matches('_');
                    let span = self.operator_span(expr, op, &call.args[0], &call.args[1]);
                    self.error(
                        span,
                        format!("`{op}` cannot compare {} with {}", a.name(), b.name()),
                        "not comparable",
                        hint(a, b),
                    );
                }
                Ty::Bool
            }
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", [a, b]) => {
                let op = &name[1..2];
                match arithmetic(op, a, b) {
                    Some(t) => t,
                    None => {
                        let span = self.operator_span(expr, op, &call.args[0], &call.args[1]);
                        let help = if a.numeric() && b.numeric() {
                            MIXED.to_owned()
                        } else if *a == Ty::String || *b == Ty::String {
                            "strings are joined with `+` only to strings: convert with `string()`, or compare instead".to_owned()
                        } else {
                            "arithmetic works on numbers of one type, timestamps and durations".to_owned()
                        };
                        self.error(
                            span,
                            format!("`{op}` cannot combine {} and {}", a.name(), b.name()),
                            "wrong types",
                            help,
                        )
                    }
                }
            }
            ("@in", [a, b]) => {
                let ok = match b {
                    Ty::List(e) => a.can_equal(e),
                    Ty::Map(k, _) => a.can_equal(k),
                    Ty::Record(_) => a.can_equal(&Ty::String),
                    Ty::Dyn => true,
                    _ => false,
                };
                if !ok {
                    let span = self.operator_span(expr, "in", &call.args[0], &call.args[1]);
                    let (message, help) = match b {
                        Ty::List(_) | Ty::Map(..) | Ty::Record(_) => (
                            format!("`in` looks for {} in {}: it is never found", a.name(), b.name()),
                            hint(a, b),
                        ),
                        Ty::String => (
                            "`in` needs a list or a map on its right, not string".to_owned(),
                            "to find text in a string, use `.contains()`, as in `user.title.contains(\"Lead\")`".to_owned(),
                        ),
                        other => (
                            format!("`in` needs a list or a map on its right, not {}", other.name()),
                            "write a list, as in `user.department in [\"Sales\", \"Ops\"]`".to_owned(),
                        ),
                    };
                    self.error(span, message, "never found", help);
                }
                Ty::Bool
            }
            ("@not_strictly_false", _) => Ty::Bool,
            ("_[_]", [c, i]) => self.index(expr, c, i, &call.args[1]),
            ("_[?_]" | "_?._", _) => Ty::Dyn,
            _ => self.function(expr, name, target, &args),
        }
    }

    fn index(&mut self, expr: &IdedExpr, container: &Ty, index: &Ty, index_expr: &IdedExpr) -> Ty {
        match container {
            Ty::List(e) => {
                if !matches!(index, Ty::Int | Ty::Uint | Ty::Dyn) {
                    let span = self.extent(index_expr);
                    return self.error(
                        span,
                        format!("a list is indexed by an int, not {}", index.name()),
                        "not an int",
                        "list positions count from 0",
                    );
                }
                (**e).clone()
            }
            Ty::Map(_, v) => (**v).clone(),
            Ty::Record(fields) => match &index_expr.expr {
                Expr::Literal(LiteralValue::String(key)) => {
                    fields.iter().find(|(n, _)| n == key.inner()).map_or(Ty::Dyn, |(_, t)| t.clone())
                }
                _ => Ty::Dyn,
            },
            Ty::Dyn => Ty::Dyn,
            other => {
                let span = self.span(expr.id);
                self.error(
                    span,
                    format!("{} cannot be indexed with `[]`", other.name()),
                    "not a list or a map",
                    "only lists and maps have elements",
                )
            }
        }
    }

    fn function(&mut self, expr: &IdedExpr, name: &str, target: Option<(&IdedExpr, Ty)>, args: &[Ty]) -> Ty {
        // The receiver of a method, or the first argument of a global call.
        let (subject, rest): (Option<&Ty>, &[Ty]) = match &target {
            Some((_, t)) => (Some(t), args),
            None => (args.first(), args.get(1..).unwrap_or(&[])),
        };
        let name_span = || match &target {
            Some((t, _)) => self.name_after(self.end_of(t), Some(name)),
            None => {
                let (paren, _) = self.span(expr.id);
                let start = self
                    .source
                    .get(..paren)
                    .and_then(|before| before.trim_end().strip_suffix(name).map(str::len))
                    .unwrap_or(paren);
                (start, (start + name.len()).min(self.source.len()))
            }
        };
        match name {
            "size" => {
                if let Some(t) = subject
                    && !matches!(
                        t,
                        Ty::String | Ty::Bytes | Ty::List(_) | Ty::Map(..) | Ty::Record(_) | Ty::Dyn
                    )
                {
                    let span = name_span();
                    return self.error(
                        span,
                        format!("`size()` cannot take {}", t.name()),
                        "no size",
                        "`size()` counts the characters of a string or the elements of a list or a map",
                    );
                }
                Ty::Int
            }
            "contains" | "startsWith" | "endsWith" | "matches" => {
                if let Some(t) = subject
                    && !matches!(t, Ty::String | Ty::Dyn)
                {
                    let span = name_span();
                    let help = match t {
                        Ty::List(_) => format!(
                            "`{name}()` works on strings; to test whether a list holds a value, write `\"x\" in list`"
                        ),
                        _ => format!("`{name}()` works on strings: convert with `string()` first"),
                    };
                    return self.error(
                        span,
                        format!("`{name}()` cannot be called on {}", t.name()),
                        "not a string",
                        help,
                    );
                }
                if let Some(arg) = rest.first()
                    && !matches!(arg, Ty::String | Ty::Dyn)
                {
                    let span = name_span();
                    return self.error(
                        span,
                        format!("`{name}()` takes a string, not {}", arg.name()),
                        "wrong argument",
                        "quote the text, as in `.startsWith(\"VP\")`",
                    );
                }
                Ty::Bool
            }
            "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds" | "getFullYear" | "getMonth"
            | "getDayOfYear" | "getDayOfMonth" | "getDate" | "getDayOfWeek" => {
                let durations = matches!(name, "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds");
                if let Some((_, t)) = &target
                    && !(matches!(t, Ty::Timestamp | Ty::Dyn) || (durations && *t == Ty::Duration))
                {
                    let span = name_span();
                    return self.error(
                        span,
                        format!("`{name}()` cannot be called on {}", t.name()),
                        "not a timestamp",
                        "date functions work on timestamps such as `now` or `override.expires`",
                    );
                }
                Ty::Int
            }
            "int" => Ty::Int,
            "uint" => Ty::Uint,
            "double" => Ty::Double,
            "string" => Ty::String,
            "bool" => Ty::Bool,
            "bytes" => Ty::Bytes,
            "timestamp" => Ty::Timestamp,
            "duration" => Ty::Duration,
            "type" => Ty::Type,
            _ => Ty::Dyn,
        }
    }
}

/// True for the accumulator a macro's expansion reads (`@result`): no CEL author can
/// write a name starting with `@`.
fn is_accumulator(expr: &IdedExpr) -> bool {
    matches!(&expr.expr, Expr::Ident(name) if name.starts_with('@'))
}

/// True when `expr` is the accumulator or a call on it (`@result + [x]`).
fn mentions_accumulator(expr: &IdedExpr) -> bool {
    is_accumulator(expr) || matches!(&expr.expr, Expr::Call(c) if c.args.iter().any(is_accumulator))
}

/// The result of an arithmetic operator, or `None` when the operands cannot combine.
fn arithmetic(op: &str, a: &Ty, b: &Ty) -> Option<Ty> {
    use Ty::*;
    if a.is_dyn() || b.is_dyn() {
        return Some(Dyn);
    }
    match (op, a, b) {
        ("%", Int, Int) => Some(Int),
        ("%", Uint, Uint) => Some(Uint),
        ("%", ..) => None,
        (_, Int, Int) => Some(Int),
        (_, Uint, Uint) => Some(Uint),
        (_, Double, Double) => Some(Double),
        ("+", String, String) => Some(String),
        ("+", Bytes, Bytes) => Some(Bytes),
        ("+", List(x), List(y)) => Some(List(Box::new(if x == y { (**x).clone() } else { Dyn }))),
        ("+", Timestamp, Duration) | ("+", Duration, Timestamp) | ("-", Timestamp, Duration) => {
            Some(Timestamp)
        }
        ("+" | "-", Duration, Duration) | ("-", Timestamp, Timestamp) => Some(Duration),
        _ => None,
    }
}

/// The type all of `types` share, or `dyn`.
fn common(types: &[Ty]) -> Ty {
    match types.split_first() {
        Some((first, rest)) if rest.iter().all(|t| t == first) => first.clone(),
        _ => Ty::Dyn,
    }
}

/// How to make two types meet.
fn hint(a: &Ty, b: &Ty) -> String {
    let number_and_string = |x: &Ty, y: &Ty| x.numeric() && *y == Ty::String;
    if number_and_string(a, b) || number_and_string(b, a) {
        "a string never equals a number: compare with a value of the same type, `\"5\"` for a string \
         attribute, `5` for a number"
            .into()
    } else {
        "compare values of the same type, converting one side with `string()`, `int()` or `double()` if needed"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of `source` with `user` holding `department: string`, `tags: list`, `level: number`.
    fn errors(source: &str) -> Vec<(String, String)> {
        let program = ::cel::Env::stdlib().compile(source).unwrap();
        let user = Ty::Record(Rc::new(vec![
            ("email".into(), Ty::String),
            ("department".into(), Ty::String),
            ("tags".into(), Ty::List(Box::new(Ty::String))),
            ("level".into(), Ty::Double),
            ("active".into(), Ty::Bool),
        ]));
        let mut checker = Checker::new(program.source_info(), source, vec![("user".into(), user)]);
        let top = checker.check(program.expression());
        let mut out: Vec<_> = checker
            .errors
            .iter()
            .map(|e| (e.message.clone(), source[e.span.0..e.span.1].to_owned()))
            .collect();
        out.push((format!("type {}", top.name()), String::new()));
        out
    }

    fn ok(source: &str) -> String {
        let e = errors(source);
        assert_eq!(e.len(), 1, "{source}: {e:?}");
        e[0].0.clone()
    }

    #[test]
    fn well_typed_selectors_are_conditions() {
        for source in [
            "user.department == \"Eng\"",
            "user.department in [\"Eng\", \"Ops\"] && !user.active",
            "\"admins\" in user.tags",
            "user.tags.exists(t, t.startsWith(\"eng-\"))",
            "size(user.tags) > 2 && user.department.size() < 40",
            "user.level >= 3 && user.level < 7.5",
            "user.level == 3",
            "has(user.department) ? user.department == \"x\" : false",
            "user['department'].endsWith('ing')",
            "user.email.matches('@acme[.]com$') || user.tags.all(t, t != '')",
            "type(user.department) == string",
            "user.tags.map(t, t + '!').exists(t, t == 'x!')",
            "user.tags.filter(t, t.size() > 2).size() > 0",
            "{'a': 1}['a'] == 1 && [1, 2][0] == 1",
            "dyn(user.department) == 5",
        ] {
            assert_eq!(ok(source), "type bool", "{source}");
        }
    }

    #[test]
    fn unknown_names_are_dyn_and_never_errors() {
        assert_eq!(ok("user.manager == 5"), "type bool");
        assert_eq!(ok("user.manager"), "type dyn");
        assert_eq!(ok("user.manager.level + 'x' == 1"), "type bool");
        assert_eq!(ok("nobody.x"), "type dyn");
    }

    #[test]
    fn a_selector_that_is_not_a_condition_has_its_type() {
        assert_eq!(ok("user.department"), "type string");
        assert_eq!(ok("user.tags"), "type list(string)");
        assert_eq!(ok("size(user.tags)"), "type int");
    }

    #[test]
    fn static_type_errors_point_at_the_operator_or_name() {
        let cases: &[(&str, &str, &str)] = &[
            ("user.department == 5", "`==` compares string with int: it is never true", "=="),
            ("user.department != 5", "`!=` compares string with int: it is always true", "!="),
            ("user.department > 5", "`>` cannot compare string with int", ">"),
            ("user.department.exists(c, c == 'E')", "`exists` needs a list or a map, not string", "exists"),
            ("user.tags.contains('x')", "`contains()` cannot be called on list(string)", "contains"),
            ("size(user.level) > 1", "`size()` cannot take double", "size"),
            ("'x' in user.department", "`in` needs a list or a map on its right, not string", "in"),
            ("5 in user.tags", "`in` looks for int in list(string): it is never found", "in"),
            ("user.department + 1 == 'x1'", "`+` cannot combine string and int", "+"),
            ("user.department * 2 == 'x'", "`*` cannot combine string and int", "*"),
            ("user.level + 1 > 2.0", "`+` cannot combine double and int", "+"),
            ("user.department && true", "`&&` needs conditions on both sides, not string", "user.department"),
            ("!user.department", "`!` needs a condition, not string", "!"),
            ("user.department.startsWith(1)", "`startsWith()` takes a string, not int", "startsWith"),
            ("user.department.title == 'x'", "string has no field `title`", "title"),
            ("user.department[0] == 'x'", "string cannot be indexed with `[]`", "["),
            ("user.tags.exists(t, t)", "the condition of the macro is string, not true or false", "t"),
            (
                "user.tags.filter(t, t).size() > 0",
                "the condition of the macro is string, not true or false",
                "t",
            ),
            ("user.tags.exists_one(t, 1)", "the condition of the macro is int, not true or false", "1"),
        ];
        for (source, message, at) in cases {
            let found = errors(source);
            assert_eq!(found.len(), 2, "{source}: {found:?}");
            assert_eq!(found[0].0, *message, "{source}");
            assert_eq!(found[0].1, *at, "{source}");
        }
    }

    #[test]
    fn one_mistake_is_reported_once() {
        let found = errors("(user.department + 1) * 2 == 3 && user.department == 1");
        let messages: Vec<_> = found.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`+` cannot combine string and int",
                "`==` compares string with int: it is never true",
                "type bool"
            ]
        );
    }
}
