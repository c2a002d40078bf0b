//! Group selectors: which users of a directory a CEL expression over `user.*` selects.
//!
//! A selector sees one variable, `user`, a CEL map holding `email` and every declared
//! attribute the user has: a string attribute as a string, a list as a list of
//! strings, a number as a double, a bool as a bool. A missing attribute is absent
//! from the map, so `has(user.x)` is false and reading `user.x` is an evaluation
//! error. A user matches when the selector evaluates to `true`; an error, or a value
//! that is not a bool, is no match and is reported.
//!
//! [`interpret_all`] is the reference: the `cel` interpreter, user by user.
//! [`Selector::matches`] gives the same answers, errors included, in bulk:
//!
//! - `&&`, `||`, `!`, `?:`, `true`, `false` and parentheses are word-wise operations
//!   on bitsets (64 users at a time), with CEL's error absorption (`false && error`
//!   is false, `true || error` is true).
//! - `user.a == "x"`, `!=`, `user.a in ["x", "y"]`, `"x" in user.a`,
//!   `user.a.startsWith("x")` / `endsWith` / `contains`, `has(user.a)` and a bare
//!   `user.a` are decided once per distinct value of the attribute (values are
//!   interned per column) and spread over the users through per-value bitsets or a
//!   scan of the value ids.
//! - Anything else is memoised: the interpreter runs once per distinct combination
//!   of the attributes the subexpression reads (for a list only read through
//!   `size()` or element-only `all()`/`exists()` loops, once per length or per
//!   pattern of element outcomes).
//!
//! To evaluate many selectors over one directory, share the interned columns: use
//! [`matches_all`], or build one [`DirectoryIndex`] and call
//! [`Selector::matches_in`] for each selector. [`Selector::matches`] builds an index
//! for a single call, which costs far more than the evaluation itself (≈ 10 ms per
//! attribute read at 100k users).
//!
//! The `cel` parser and interpreter abort the process when they run out of stack,
//! so every entry point here runs them on a scoped thread with
//! [`LARGE_STACK`](crate::stack::LARGE_STACK) bytes of stack (started only when
//! the interpreter is needed): callers need not.

mod bits;
pub mod cache;
mod index;
mod interp;
mod query;
#[cfg(test)]
mod tests;

use cel::Program;
use thiserror::Error;

use crate::directory::Directory;
use crate::model::{AttributeType, MAX_CEL_LEN};
use crate::stack::LARGE_STACK;

pub use bits::Bitset;
use bits::{Tri, Verdict};
pub use index::DirectoryIndex;
use query::Node;

/// Why a selector could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectError {
    /// The expression is longer than [`MAX_CEL_LEN`] bytes.
    #[error("selector is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The expression is not valid CEL.
    #[error("invalid selector: {message}")]
    Syntax {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The expression reads `user.<name>` for an attribute the workspace does not declare.
    #[error("unknown attribute `{name}`")]
    UnknownAttribute {
        /// The attribute read.
        name: String,
    },
    /// Evaluating the selector for a user failed.
    #[error("selector failed for `{user}`: {message}")]
    Eval {
        /// The user's email.
        user: String,
        /// What went wrong.
        message: String,
    },
    /// No user at this position.
    #[error("no user at position {0}")]
    NoSuchUser(usize),
    /// The worker thread CEL runs on could not be started.
    #[error("cannot run the selector: {0}")]
    Worker(String),
}

/// Which users a selector matched, and which ones it failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matches {
    matched: Bitset,
    errors: Vec<usize>,
}

impl Matches {
    /// The matched users as a bitset over directory positions.
    pub fn bitset(&self) -> &Bitset {
        &self.matched
    }

    /// The bitset's words, 64 users each, lowest bit first.
    pub fn words(&self) -> &[u64] {
        self.matched.words()
    }

    /// Whether user `i` matched.
    pub fn contains(&self, i: usize) -> bool {
        self.matched.contains(i)
    }

    /// Number of matched users.
    pub fn count(&self) -> usize {
        self.matched.count()
    }

    /// The matched users' positions, in directory order.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.matched.iter_ones()
    }

    /// Positions of the users whose evaluation failed (counted as no match), in order.
    pub fn errors(&self) -> &[usize] {
        &self.errors
    }

    /// Number of users the result covers.
    pub fn len(&self) -> usize {
        self.matched.len()
    }

    /// True when the directory had no user.
    pub fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    fn from_tri(tri: Tri) -> Matches {
        Matches { errors: tri.e.iter_ones().collect(), matched: tri.t }
    }

    fn from_verdicts(len: usize, verdicts: impl IntoIterator<Item = Verdict>) -> Matches {
        let mut matched = Bitset::new(len);
        let mut errors = Vec::new();
        for (i, v) in verdicts.into_iter().enumerate() {
            match v {
                Verdict::True => matched.insert(i),
                Verdict::Error => errors.push(i),
                Verdict::False => {}
            }
        }
        Matches { matched, errors }
    }
}

/// A compiled group selector.
#[derive(Debug)]
pub struct Selector {
    source: String,
    program: std::sync::Arc<Program>,
    query: Node,
}

/// Runs `f` on a scoped thread with a large stack, for parsing and interpreting CEL.
fn on_large_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, SelectError> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("budgit-cel".into())
            .stack_size(LARGE_STACK)
            .spawn_scoped(scope, f)
            .map_err(|e| SelectError::Worker(e.to_string()))?;
        handle.join().map_err(|_| SelectError::Worker("the CEL worker thread panicked".into()))
    })
}

/// Parses `expr` after checking its length, on the caller's stack (callers ensure a large one).
fn parse(expr: &str) -> Result<std::sync::Arc<Program>, SelectError> {
    if expr.len() > MAX_CEL_LEN {
        return Err(SelectError::TooLong { len: expr.len(), max: MAX_CEL_LEN });
    }
    cache::program(expr).map_err(|e| SelectError::Syntax { message: e.to_string() })
}

impl Selector {
    /// Compiles a selector; `attributes` are the workspace's declared attributes.
    ///
    /// Rejects an expression longer than [`MAX_CEL_LEN`] before parsing it, one that
    /// is not CEL, and one reading `user.<name>` for an undeclared attribute.
    pub fn compile(expr: &str, attributes: &[(String, AttributeType)]) -> Result<Selector, SelectError> {
        if expr.len() > MAX_CEL_LEN {
            return Err(SelectError::TooLong { len: expr.len(), max: MAX_CEL_LEN });
        }
        on_large_stack(|| Self::compile_here(expr, attributes))?
    }

    /// Compiles several selectors on one thread with a large stack (starting a thread
    /// per selector costs more than parsing a short one).
    pub fn compile_all<'e>(
        exprs: impl IntoIterator<Item = &'e str>,
        attributes: &[(String, AttributeType)],
    ) -> Vec<Result<Selector, SelectError>> {
        let exprs: Vec<&str> = exprs.into_iter().collect();
        let n = exprs.len();
        if n == 0 {
            return Vec::new();
        }
        on_large_stack(|| exprs.iter().map(|e| Self::compile_here(e, attributes)).collect())
            .unwrap_or_else(|e| (0..n).map(|_| Err(e.clone())).collect())
    }

    /// [`Selector::compile`] on the caller's stack (callers ensure a large one).
    fn compile_here(expr: &str, attributes: &[(String, AttributeType)]) -> Result<Selector, SelectError> {
        let program = parse(expr)?;
        let mut fields = Vec::new();
        query::fields_read(program.expression(), &mut fields);
        if let Some(name) =
            fields.into_iter().find(|f| f != "email" && !attributes.iter().any(|(a, _)| a == f))
        {
            return Err(SelectError::UnknownAttribute { name });
        }
        let query = Node::compile(program.expression());
        Ok(Selector { source: expr.to_owned(), program, query })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether each user of `dir` matches, in directory order.
    ///
    /// Evaluation errors count as no match and are listed in [`Matches::errors`].
    ///
    /// Builds a [`DirectoryIndex`] for this one call: to evaluate many selectors over
    /// one directory, build the index once and use [`Selector::matches_in`] or
    /// [`matches_all`].
    pub fn matches(&self, dir: &Directory) -> Matches {
        self.matches_in(&DirectoryIndex::new(dir))
    }

    /// Whether each user of the indexed directory matches, in directory order.
    ///
    /// Tests of one attribute against literals are column scans; the rest runs the
    /// interpreter once per distinct combination of the attributes it reads, on a
    /// thread with a large stack (started only when needed).
    pub fn matches_in(&self, index: &DirectoryIndex<'_>) -> Matches {
        if !self.query.interprets() {
            return Matches::from_tri(self.query.eval(index));
        }
        match on_large_stack(|| self.query.eval(index)) {
            Ok(tri) => Matches::from_tri(tri),
            Err(_) => all_errors(index.len()),
        }
    }

    /// Whether user `user` (a position in `dir`) matches, through the interpreter.
    ///
    /// A failed evaluation is [`SelectError::Eval`] with the interpreter's message.
    pub fn matches_user(&self, dir: &Directory, user: usize) -> Result<bool, SelectError> {
        let Some(u) = dir.users.get(user) else {
            return Err(SelectError::NoSuchUser(user));
        };
        let expr = self.program.expression();
        on_large_stack(|| interp::explain_user(expr, dir, user))?
            .map_err(|message| SelectError::Eval { user: u.email.clone(), message })
    }
}

/// Every user failed: what is left when no thread can be started for the interpreter.
fn all_errors(len: usize) -> Matches {
    Matches::from_verdicts(len, std::iter::repeat_n(Verdict::Error, len))
}

/// Evaluates every selector over `dir`, sharing one index and one large-stack thread.
pub fn matches_all(selectors: &[Selector], dir: &Directory) -> Vec<Matches> {
    let index = DirectoryIndex::new(dir);
    let mut columns = Vec::new();
    for s in selectors {
        s.query.columns(&mut columns);
    }
    index.prepare(columns);
    let index = &index;
    let run = || selectors.iter().map(|s| Matches::from_tri(s.query.eval(index))).collect();
    if !selectors.iter().any(|s| s.query.interprets()) {
        return run();
    }
    on_large_stack(run).unwrap_or_else(|_| selectors.iter().map(|_| all_errors(dir.len())).collect())
}

/// Interprets `program` for every user, reusing one context (the natural per-user loop).
fn interpret_program(program: &Program, dir: &Directory) -> Matches {
    let binding = interp::Binding::full(dir);
    let mut ctx = cel::Context::with_env(interp::env());
    let mut verdicts = Vec::with_capacity(dir.len());
    for i in 0..dir.len() {
        ctx.add_variable_as_val("user", Box::new(binding.user(dir, i)));
        verdicts.push(interp::verdict(program.expression(), &ctx));
    }
    Matches::from_verdicts(dir.len(), verdicts)
}

/// The reference path: interprets `expr` with `cel` for each user of `dir` in turn.
///
/// This is what [`Selector::matches`] must agree with, and the baseline its speed is
/// measured against. It checks the length and the syntax, not the attribute names.
pub fn interpret_all(expr: &str, dir: &Directory) -> Result<Matches, SelectError> {
    on_large_stack(|| parse(expr).map(|program| interpret_program(&program, dir)))?
}
