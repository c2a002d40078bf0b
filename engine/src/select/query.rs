//! Compiling a selector's CEL tree into a query of column scans and memoised subexpressions.
//!
//! The boolean skeleton (`&&`, `||`, `!`, `?:`, `true`, `false`) becomes word-wise
//! operations on [`Tri`] bitsets. Common tests of one attribute against string
//! literals become column scans: the test is decided once per distinct value and
//! spread over the users through the column's ids. Anything else is a memoised
//! subexpression: the interpreter runs once per distinct combination of the
//! attributes it reads, on a representative user.
//!
//! The semantics are those of the `cel` 0.15 interpreter, which the property tests
//! hold this module to: comparing a string literal with a list, number or bool is
//! `false` (not an error), `in` a list of strings likewise; `"x" in` a non-list, or
//! `startsWith`/`endsWith`/`contains` on a non-string, is an error; reading a
//! missing attribute is an error, `has()` of it is `false`.

use cel::common::ast::{CallExpr, Expr, LiteralValue, SelectExpr, operators};
use cel::{Context, IdedExpr};

use super::bits::{Tri, Verdict};
use super::index::{Column, DirectoryIndex, Distinct};
use super::interp::{self, Binding};
use crate::FastMap;

/// A test of one attribute against literals, decided per distinct value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// `user.a == "x"` (and, negated, `!=`).
    Eq(String),
    /// `user.a in ["x", "y"]`.
    In(Vec<String>),
    /// `"x" in user.a`.
    Holds(String),
    /// `user.a.startsWith("x")`.
    StartsWith(String),
    /// `user.a.endsWith("x")`.
    EndsWith(String),
    /// `user.a.contains("x")`.
    Contains(String),
    /// `has(user.a)`.
    Has,
    /// `user.a` used as a condition.
    IsTrue,
}

/// What a memoised subexpression reads of `user`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reads {
    /// Only these fields, each through `user.<field>` or `has(user.<field>)`, and
    /// how much of each value the result depends on.
    Fields(Vec<(String, View)>),
    /// `user` itself (e.g. `size(user)`): every user is evaluated.
    Whole,
}

/// How much of a field's value a memoised subexpression depends on: the coarser,
/// the fewer distinct keys, the fewer interpreter runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum View {
    /// The whole value.
    Value,
    /// For a list, only its length (the field is only read by `size()` and `has()`).
    Size,
    /// For a list, only the sequence of what each of these `(variable, body)`
    /// predicates gives for its elements: the field is only iterated by `all()` /
    /// `exists()`-shaped loops whose body reads nothing but the element.
    Classes(Vec<(String, IdedExpr)>),
}

/// A compiled selector: a boolean combination of column tests and memoised leaves.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Verdict),
    Leaf { field: String, test: Test },
    Memo { expr: Box<IdedExpr>, reads: Reads },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

fn is_user(expr: &IdedExpr) -> bool {
    matches!(&expr.expr, Expr::Ident(name) if name == "user")
}

/// `user.<field>` (not a presence test): the field.
fn user_field(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Select(SelectExpr { operand, field, test: false }) if is_user(operand) => Some(field),
        _ => None,
    }
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

fn string_list(expr: &IdedExpr) -> Option<Vec<String>> {
    match &expr.expr {
        Expr::List(list) if list.optional_indices.is_empty() => {
            list.elements.iter().map(|e| string_literal(e).map(str::to_owned)).collect()
        }
        _ => None,
    }
}

fn leaf(field: &str, test: Test) -> Node {
    Node::Leaf { field: field.to_owned(), test }
}

impl Node {
    /// Compiles `expr`, whose value is used as a condition.
    pub(crate) fn compile(expr: &IdedExpr) -> Node {
        match &expr.expr {
            Expr::Literal(LiteralValue::Boolean(b)) => {
                Node::Const(if *b.inner() { Verdict::True } else { Verdict::False })
            }
            Expr::Call(call) if call.target.is_none() => {
                Self::compile_call(call).unwrap_or_else(|| memo(expr))
            }
            Expr::Call(call) => Self::compile_method(call).unwrap_or_else(|| memo(expr)),
            Expr::Select(SelectExpr { operand, field, test }) if is_user(operand) => {
                leaf(field, if *test { Test::Has } else { Test::IsTrue })
            }
            _ => memo(expr),
        }
    }

    fn compile_call(call: &CallExpr) -> Option<Node> {
        let name = call.func_name.as_str();
        match call.args.as_slice() {
            [a, b] if name == operators::LOGICAL_AND => {
                Some(Node::And(Box::new(Node::compile(a)), Box::new(Node::compile(b))))
            }
            [a, b] if name == operators::LOGICAL_OR => {
                Some(Node::Or(Box::new(Node::compile(a)), Box::new(Node::compile(b))))
            }
            [a] if name == operators::LOGICAL_NOT => Some(Node::Not(Box::new(Node::compile(a)))),
            [c, a, b] if name == operators::CONDITIONAL => Some(Node::Cond(
                Box::new(Node::compile(c)),
                Box::new(Node::compile(a)),
                Box::new(Node::compile(b)),
            )),
            [a, b] if name == operators::EQUALS || name == operators::NOT_EQUALS => {
                let (field, s) = match (user_field(a), string_literal(b), string_literal(a), user_field(b)) {
                    (Some(f), Some(s), _, _) | (_, _, Some(s), Some(f)) => (f, s),
                    _ => return None,
                };
                let eq = leaf(field, Test::Eq(s.to_owned()));
                Some(if name == operators::EQUALS { eq } else { Node::Not(Box::new(eq)) })
            }
            [a, b] if name == operators::IN => {
                if let (Some(field), Some(list)) = (user_field(a), string_list(b)) {
                    Some(leaf(field, Test::In(list)))
                } else if let (Some(s), Some(field)) = (string_literal(a), user_field(b)) {
                    Some(leaf(field, Test::Holds(s.to_owned())))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn compile_method(call: &CallExpr) -> Option<Node> {
        let field = user_field(call.target.as_deref()?)?;
        let [arg] = call.args.as_slice() else {
            return None;
        };
        let s = string_literal(arg)?.to_owned();
        let test = match call.func_name.as_str() {
            "startsWith" => Test::StartsWith(s),
            "endsWith" => Test::EndsWith(s),
            "contains" => Test::Contains(s),
            _ => return None,
        };
        Some(leaf(field, test))
    }

    /// Adds the attributes the query reads columns of to `out`.
    pub(crate) fn columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::Const(_) | Node::Memo { reads: Reads::Whole, .. } => {}
            Node::Leaf { field, .. } => out.push(field),
            Node::Memo { reads: Reads::Fields(fields), .. } => {
                out.extend(fields.iter().map(|(f, _)| f.as_str()))
            }
            Node::Not(a) => a.columns(out),
            Node::And(a, b) | Node::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Node::Cond(c, a, b) => {
                c.columns(out);
                a.columns(out);
                b.columns(out);
            }
        }
    }

    /// Whether evaluating the query runs the interpreter (and so needs a large stack).
    pub(crate) fn interprets(&self) -> bool {
        match self {
            Node::Const(_) | Node::Leaf { .. } => false,
            Node::Memo { .. } => true,
            Node::Not(a) => a.interprets(),
            Node::And(a, b) | Node::Or(a, b) => a.interprets() || b.interprets(),
            Node::Cond(c, a, b) => c.interprets() || a.interprets() || b.interprets(),
        }
    }

    /// Evaluates the query for every user of the index.
    ///
    /// Runs the `cel` interpreter when [`Node::interprets`]: call it on a large stack then.
    pub(crate) fn eval(&self, index: &DirectoryIndex<'_>) -> Tri {
        let len = index.len();
        match self {
            Node::Const(v) => Tri::constant(len, *v),
            Node::Leaf { field, test } => match index.column(field) {
                Some(col) => leaf_tri(col, test, len),
                None => Tri::constant(len, decide_missing(test)),
            },
            Node::Memo { expr, reads } => eval_memo(expr, reads, index),
            Node::Not(a) => a.eval(index).not(),
            Node::And(a, b) => a.eval(index).and(&b.eval(index)),
            Node::Or(a, b) => a.eval(index).or(&b.eval(index)),
            Node::Cond(c, a, b) => c.eval(index).cond(&a.eval(index), &b.eval(index)),
        }
    }
}

fn memo(expr: &IdedExpr) -> Node {
    let mut fields = Vec::new();
    let reads = if collect_reads(expr, &mut fields) {
        Reads::Fields(
            fields
                .into_iter()
                .map(|f| {
                    let mut uses = Uses::default();
                    field_uses(expr, &f, &mut uses);
                    let view = if uses.value {
                        View::Value
                    } else if !uses.loops.is_empty() {
                        View::Classes(uses.loops)
                    } else {
                        View::Size
                    };
                    (f, view)
                })
                .collect(),
        )
    } else {
        Reads::Whole
    };
    Node::Memo { expr: Box::new(expr.clone()), reads }
}

/// How an expression uses one field of `user`.
#[derive(Default)]
struct Uses {
    /// Read as a value (anything but the shapes below).
    value: bool,
    /// Iterated by fold-shaped loops with these element predicates.
    loops: Vec<(String, IdedExpr)>,
}

fn is_user_field(expr: &IdedExpr, field: &str) -> bool {
    user_field(expr) == Some(field)
}

/// Whether an identifier in `names` occurs anywhere in `expr` (shadowing ignored: an
/// over-approximation).
fn mentions(expr: &IdedExpr, names: &[&str]) -> bool {
    let hit = |e: &IdedExpr| mentions(e, names);
    match &expr.expr {
        Expr::Ident(name) => names.contains(&name.as_str()) || names.contains(&name.trim_start_matches('.')),
        Expr::Select(s) => hit(&s.operand),
        Expr::Call(call) => call.target.as_deref().is_some_and(hit) || call.args.iter().any(hit),
        Expr::Comprehension(c) => {
            [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result].into_iter().any(hit)
        }
        Expr::List(list) => list.elements.iter().any(hit),
        Expr::Map(map) => map.entries.iter().any(|entry| match &entry.expr {
            cel::common::ast::EntryExpr::StructField(f) => hit(&f.value),
            cel::common::ast::EntryExpr::MapEntry(e) => hit(&e.key) || hit(&e.value),
        }),
        Expr::Struct(st) => st.entries.iter().any(|entry| match &entry.expr {
            cel::common::ast::EntryExpr::StructField(f) => hit(&f.value),
            cel::common::ast::EntryExpr::MapEntry(e) => hit(&e.key) || hit(&e.value),
        }),
        Expr::Literal(_) | Expr::Unspecified => false,
    }
}

/// The element predicate of an `all()` / `exists()`-shaped loop: the step is
/// `accu && body` or `accu || body`, the result and condition read only the
/// accumulator, and the body reads only the element. Such a loop's outcome depends
/// on the elements only through what the body gives for each (true, false, or
/// anything else, which the connective turns into an error).
fn fold_body(c: &cel::common::ast::ComprehensionExpr) -> Option<&IdedExpr> {
    if c.iter_var2.is_some() {
        return None;
    }
    let Expr::Call(step) = &c.loop_step.expr else {
        return None;
    };
    if step.target.is_some()
        || (step.func_name != operators::LOGICAL_AND && step.func_name != operators::LOGICAL_OR)
    {
        return None;
    }
    let [accu, body] = step.args.as_slice() else {
        return None;
    };
    let outside = ["user", c.iter_var.as_str()];
    let fixed = matches!(&accu.expr, Expr::Ident(n) if *n == c.accu_var)
        && !mentions(&c.accu_init, &outside)
        && !mentions(&c.loop_cond, &outside)
        && !mentions(&c.result, &outside)
        && !mentions(body, &["user", c.accu_var.as_str()]);
    fixed.then_some(body)
}

/// Records how `expr` uses `user.<field>`.
fn field_uses(expr: &IdedExpr, field: &str, uses: &mut Uses) {
    match &expr.expr {
        Expr::Select(SelectExpr { operand, field: f, test }) if is_user(operand) => {
            // `has(user.f)` depends on presence only, which every view keeps.
            if f == field && !test {
                uses.value = true;
            }
        }
        Expr::Call(call)
            if call.func_name == "size"
                && match (call.target.as_deref(), call.args.as_slice()) {
                    (None, [arg]) | (Some(arg), []) => is_user_field(arg, field),
                    _ => false,
                } => {}
        Expr::Comprehension(c) if is_user_field(&c.iter_range, field) => match fold_body(c) {
            Some(body) => uses.loops.push((c.iter_var.clone(), body.clone())),
            None => uses.value = true,
        },
        _ => {
            let mut sub = |e: &IdedExpr| field_uses(e, field, uses);
            match &expr.expr {
                Expr::Select(s) => sub(&s.operand),
                Expr::Call(call) => {
                    if let Some(t) = call.target.as_deref() {
                        sub(t);
                    }
                    call.args.iter().for_each(&mut sub);
                }
                Expr::Comprehension(c) => {
                    [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                        .into_iter()
                        .for_each(sub)
                }
                Expr::List(list) => list.elements.iter().for_each(sub),
                Expr::Map(map) => {
                    for entry in &map.entries {
                        match &entry.expr {
                            cel::common::ast::EntryExpr::StructField(f) => sub(&f.value),
                            cel::common::ast::EntryExpr::MapEntry(e) => {
                                sub(&e.key);
                                sub(&e.value);
                            }
                        }
                    }
                }
                Expr::Struct(st) => {
                    for entry in &st.entries {
                        match &entry.expr {
                            cel::common::ast::EntryExpr::StructField(f) => sub(&f.value),
                            cel::common::ast::EntryExpr::MapEntry(e) => {
                                sub(&e.key);
                                sub(&e.value);
                            }
                        }
                    }
                }
                Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
            }
        }
    }
}

/// Adds the fields of `user` that `expr` reads to `fields`; false when it uses
/// `user` otherwise than through a field.
///
/// A comprehension may rebind `user`; its `user.x` then reads a field of something
/// else, and counting it as a read of the attribute `x` only makes the memo key finer.
fn collect_reads(expr: &IdedExpr, fields: &mut Vec<String>) -> bool {
    let mut add = |f: &str| {
        if !fields.iter().any(|g| g == f) {
            fields.push(f.to_owned());
        }
    };
    match &expr.expr {
        Expr::Ident(name) => name != "user" && name != ".user",
        Expr::Select(SelectExpr { operand, field, .. }) if is_user(operand) => {
            add(field);
            true
        }
        Expr::Select(SelectExpr { operand, .. }) => collect_reads(operand, fields),
        Expr::Call(call) => {
            call.target.as_deref().is_none_or(|t| collect_reads(t, fields))
                && call.args.iter().all(|a| collect_reads(a, fields))
        }
        Expr::Comprehension(c) => [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
            .into_iter()
            .all(|e| collect_reads(e, fields)),
        Expr::List(list) => list.elements.iter().all(|e| collect_reads(e, fields)),
        Expr::Map(map) => map.entries.iter().all(|entry| entry_reads(&entry.expr, fields)),
        Expr::Struct(s) => s.entries.iter().all(|entry| entry_reads(&entry.expr, fields)),
        Expr::Literal(_) | Expr::Unspecified => true,
    }
}

fn entry_reads(entry: &cel::common::ast::EntryExpr, fields: &mut Vec<String>) -> bool {
    match entry {
        cel::common::ast::EntryExpr::StructField(f) => collect_reads(&f.value, fields),
        cel::common::ast::EntryExpr::MapEntry(e) => {
            collect_reads(&e.key, fields) && collect_reads(&e.value, fields)
        }
    }
}

/// Every `user.<field>` the expression reads outside comprehensions that rebind `user`.
pub(crate) fn fields_read(expr: &IdedExpr, out: &mut Vec<String>) {
    match &expr.expr {
        Expr::Select(SelectExpr { operand, field, .. }) if is_user(operand) => {
            if !out.iter().any(|g| g == field) {
                out.push(field.clone());
            }
        }
        Expr::Select(SelectExpr { operand, .. }) => fields_read(operand, out),
        Expr::Call(call) => {
            if let Some(t) = call.target.as_deref() {
                fields_read(t, out);
            }
            call.args.iter().for_each(|a| fields_read(a, out));
        }
        Expr::Comprehension(c) => {
            fields_read(&c.iter_range, out);
            let rebinds = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)]
                .into_iter()
                .flatten()
                .any(|v| v == "user");
            if !rebinds {
                for e in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    fields_read(e, out);
                }
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|e| fields_read(e, out)),
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    cel::common::ast::EntryExpr::StructField(f) => fields_read(&f.value, out),
                    cel::common::ast::EntryExpr::MapEntry(e) => {
                        fields_read(&e.key, out);
                        fields_read(&e.value, out);
                    }
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let cel::common::ast::EntryExpr::StructField(f) = &entry.expr {
                    fields_read(&f.value, out);
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// The verdict of `test` for a user without the attribute.
fn decide_missing(test: &Test) -> Verdict {
    match test {
        Test::Has => Verdict::False,
        _ => Verdict::Error,
    }
}

/// The verdict of `test` for each distinct value of `col`, by id.
fn decide(col: &Column<'_>, test: &Test) -> Vec<u8> {
    let n = col.values.len();
    let by_value =
        |f: &dyn Fn(&Distinct<'_>) -> Verdict| -> Vec<u8> { col.values.iter().map(|v| f(v) as u8).collect() };
    match test {
        Test::Eq(s) => {
            // Any present value compares without error: only the equal string is true.
            let mut table = vec![Verdict::False as u8; n];
            table[0] = Verdict::Error as u8;
            if let Some(id) = col.string(s) {
                table[id as usize] = Verdict::True as u8;
            }
            table
        }
        Test::In(list) => {
            let mut table = vec![Verdict::False as u8; n];
            table[0] = Verdict::Error as u8;
            for s in list {
                if let Some(id) = col.string(s) {
                    table[id as usize] = Verdict::True as u8;
                }
            }
            table
        }
        Test::Holds(s) => {
            let elem = col.element(s);
            by_value(&|v| match v {
                Distinct::List(items) => {
                    if elem.is_some_and(|e| items.contains(&e)) {
                        Verdict::True
                    } else {
                        Verdict::False
                    }
                }
                _ => Verdict::Error,
            })
        }
        Test::StartsWith(p) => string_test(col, |v| v.starts_with(p.as_str())),
        Test::EndsWith(p) => string_test(col, |v| v.ends_with(p.as_str())),
        Test::Contains(p) => string_test(col, |v| v.contains(p.as_str())),
        Test::Has => by_value(&|v| if *v == Distinct::Missing { Verdict::False } else { Verdict::True }),
        Test::IsTrue => by_value(&|v| match v {
            Distinct::Bool(true) => Verdict::True,
            Distinct::Bool(false) => Verdict::False,
            _ => Verdict::Error,
        }),
    }
}

fn string_test(col: &Column<'_>, f: impl Fn(&str) -> bool) -> Vec<u8> {
    col.values
        .iter()
        .map(|v| match v {
            Distinct::String(s) if f(s) => Verdict::True as u8,
            Distinct::String(_) => Verdict::False as u8,
            _ => Verdict::Error as u8,
        })
        .collect()
}

/// Evaluates a column test for every user: from per-value (or per-element) bitsets
/// when the column has them and few values decide, else by a scan of the ids.
fn leaf_tri(col: &Column<'_>, test: &Test, len: usize) -> Tri {
    if let (Test::Holds(s), Some((elements, non_lists))) = (test, col.element_postings()) {
        // True where the list holds the element; an error wherever the value is no list.
        let mut out = Tri::constant(len, Verdict::False);
        if let Some(set) = col.element(s).and_then(|e| elements.get(e as usize)) {
            out.t = set.clone();
        }
        out.e = non_lists.clone();
        return out;
    }
    let table = decide(col, test);
    if let Some(sets) = col.postings() {
        let deciding = table.iter().filter(|&&v| v != Verdict::False as u8).count();
        if deciding <= POSTING_UNIONS {
            let mut out = Tri::constant(len, Verdict::False);
            for (v, set) in table.iter().zip(sets) {
                if *v == Verdict::True as u8 {
                    out.t.union_with(set);
                } else if *v == Verdict::Error as u8 {
                    out.e.union_with(set);
                }
            }
            return out;
        }
    }
    scan(&col.ids, &table, len)
}

/// Above this many values to union, a scan of the ids is cheaper than the unions.
const POSTING_UNIONS: usize = 48;

/// Spreads per-id verdicts over the users: bit `i` of the result is `table[ids[i]]`.
fn scan(ids: &[u32], table: &[u8], len: usize) -> Tri {
    let mut out = Tri::constant(len, Verdict::False);
    let (t, e) = (out.t.words_mut(), out.e.words_mut());
    for ((chunk, tw), ew) in ids.chunks(64).zip(t.iter_mut()).zip(e.iter_mut()) {
        let (mut tb, mut eb) = (0u64, 0u64);
        for (j, &id) in chunk.iter().enumerate() {
            let v = table.get(id as usize).copied().unwrap_or(Verdict::Error as u8);
            tb |= u64::from(v & 1) << j;
            eb |= u64::from(v >> 1) << j;
        }
        *tw = tb;
        *ew = eb;
    }
    out
}

/// Runs the interpreter once per distinct combination of the fields `expr` reads.
fn eval_memo(expr: &IdedExpr, reads: &Reads, index: &DirectoryIndex<'_>) -> Tri {
    let dir = index.directory();
    let len = index.len();
    // Group users by the ids of the fields read; remember one user per group.
    let (groups, representatives): (Vec<u32>, Vec<usize>) = match reads {
        Reads::Whole => ((0..len as u32).collect(), (0..len).collect()),
        Reads::Fields(fields) => {
            let keyed: Vec<(&[u32], Vec<u32>, usize)> = fields
                .iter()
                .filter_map(|(f, view)| index.column(f).map(|col| (col, view)))
                .map(|(col, view)| {
                    let (keys, count) = view_keys(col, view);
                    (col.ids.as_slice(), keys, count)
                })
                .collect();
            group_users(&keyed, len)
        }
    };
    let binding = match reads {
        Reads::Whole => Binding::full(dir),
        Reads::Fields(fields) => {
            Binding::only(dir, &fields.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>())
        }
    };
    let mut ctx = Context::with_env(interp::env());
    let mut table = Vec::with_capacity(representatives.len());
    for &user in &representatives {
        ctx.add_variable_as_val("user", Box::new(binding.user(dir, user)));
        table.push(interp::verdict(expr, &ctx) as u8);
    }
    scan(&groups, &table, len)
}

/// The memo key of each distinct value of `col` under `view` (values the view cannot
/// tell apart share a key), and the number of keys.
fn view_keys(col: &Column<'_>, view: &View) -> (Vec<u32>, usize) {
    #[derive(PartialEq, Eq, Hash)]
    enum Key {
        Id(u32),
        Len(usize),
        Classes(Vec<u8>),
    }
    let classes: Vec<Vec<u8>> = match view {
        View::Value => return ((0..col.values.len() as u32).collect(), col.values.len()),
        View::Size => Vec::new(),
        View::Classes(loops) => loops.iter().map(|(var, body)| element_classes(col, var, body)).collect(),
    };
    let mut keys: FastMap<Key, u32> = FastMap::default();
    let out = col
        .values
        .iter()
        .enumerate()
        .map(|(id, value)| {
            let key = match (value, view) {
                (Distinct::List(items), View::Size) => Key::Len(items.len()),
                (Distinct::List(items), View::Classes(_)) => Key::Classes(
                    items.iter().flat_map(|&e| classes.iter().map(move |c| c[e as usize])).collect(),
                ),
                _ => Key::Id(id as u32),
            };
            let next = keys.len() as u32;
            *keys.entry(key).or_insert(next)
        })
        .collect();
    (out, keys.len())
}

/// What the loop body `body` gives for each list element of `col` bound as `var`.
fn element_classes(col: &Column<'_>, var: &str, body: &IdedExpr) -> Vec<u8> {
    let root = Context::with_env(interp::env());
    col.element_names
        .iter()
        .map(|&name| {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_as_val(var, Box::new(cel::common::types::CelString::from(name)));
            interp::verdict(body, &ctx) as u8
        })
        .collect()
}

/// A dense group id per user for the combination of the columns' keys, and the
/// first user of each group. Each column is its users' value ids, the key of each
/// value id, and the number of keys.
fn group_users(columns: &[(&[u32], Vec<u32>, usize)], len: usize) -> (Vec<u32>, Vec<usize>) {
    let Some(((ids, keys, count), rest)) = columns.split_first() else {
        return (vec![0; len], if len == 0 { vec![] } else { vec![0] });
    };
    let key_of = |keys: &[u32], id: u32| keys.get(id as usize).copied().unwrap_or(u32::MAX);
    let mut groups: Vec<u32> = ids.iter().map(|&id| key_of(keys, id)).collect();
    let mut count = *count;
    for (ids, keys, _) in rest {
        let mut pairs: FastMap<u64, u32> = FastMap::default();
        for (g, &id) in groups.iter_mut().zip(ids.iter()) {
            let key = (u64::from(*g) << 32) | u64::from(key_of(keys, id));
            let next = pairs.len() as u32;
            *g = *pairs.entry(key).or_insert(next);
        }
        count = pairs.len();
    }
    let mut representatives = vec![usize::MAX; count];
    for (user, &g) in groups.iter().enumerate() {
        if let Some(r) = representatives.get_mut(g as usize)
            && *r == usize::MAX
        {
            *r = user;
        }
    }
    // A value id no user has (possible only for a single column) gets no evaluation.
    let mut renumber = vec![u32::MAX; count];
    let mut reps = Vec::with_capacity(count);
    for (g, &r) in representatives.iter().enumerate() {
        if r != usize::MAX {
            renumber[g] = reps.len() as u32;
            reps.push(r);
        }
    }
    for g in &mut groups {
        *g = renumber.get(*g as usize).copied().unwrap_or(u32::MAX);
    }
    (groups, reps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AttrValue, Directory, User};
    use crate::model::AttributeType;

    #[test]
    fn bitset_unions_equal_the_scan_of_ids() {
        let declared = [("a".to_owned(), AttributeType::List)].into_iter().collect();
        let mut dir = Directory::new(&declared);
        let values = [
            AttrValue::List(vec!["x".into(), "y".into()]),
            AttrValue::String("x".into()),
            AttrValue::Missing,
            AttrValue::List(vec![]),
            AttrValue::Bool(true),
            AttrValue::String("xy".into()),
        ];
        for i in 0..200 {
            let attrs = vec![values[(i * 7) % values.len()].clone()];
            assert!(dir.push(User { email: format!("u{i}"), attrs }));
        }
        let index = DirectoryIndex::new(&dir);
        let Some(col) = index.column("a") else { panic!("no column") };
        let tests = [
            Test::Eq("x".into()),
            Test::In(vec!["x".into(), "xy".into()]),
            Test::Holds("x".into()),
            Test::Holds("z".into()),
            Test::StartsWith("x".into()),
            Test::EndsWith("y".into()),
            Test::Contains("".into()),
            Test::Has,
            Test::IsTrue,
        ];
        for test in &tests {
            assert_eq!(
                leaf_tri(col, test, dir.len()),
                scan(&col.ids, &decide(col, test), dir.len()),
                "{test:?}"
            );
        }
    }
}
