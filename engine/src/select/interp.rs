//! The reference semantics: binding a user as the CEL map `user` and running the `cel` interpreter.
//!
//! Everything the fast path computes must equal what these functions give; the
//! property tests compare the two. Values are bound borrowing the directory's
//! strings (no copies), which is the cheapest binding `cel` allows and what both the
//! reference loop and the memoised leaves of the fast path use.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::types::{CelBool, CelDouble, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, IdedExpr, Value};

use crate::directory::{AttrValue, Directory};

use super::bits::Verdict;

/// The standard CEL environment, built once: building it costs ≈ 20 µs.
pub(crate) fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(Env::stdlib())))
}

/// Where one key of the `user` map comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Email,
    Attr(usize),
}

/// Which keys of `user` to bind, and from where.
#[derive(Debug, Clone)]
pub(crate) struct Binding<'d> {
    keys: Vec<(&'d str, Source)>,
}

impl<'d> Binding<'d> {
    /// Every key: `email` and each declared attribute (an attribute named `email`
    /// is shadowed by the user's email).
    pub(crate) fn full(dir: &'d Directory) -> Self {
        let mut keys: Vec<(&str, Source)> = dir
            .attributes
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| name != "email")
            .map(|(i, (name, _))| (name.as_str(), Source::Attr(i)))
            .collect();
        keys.push(("email", Source::Email));
        Binding { keys }
    }

    /// Only `fields` (those the directory has): enough for an expression that reads
    /// `user` through these fields alone.
    pub(crate) fn only(dir: &'d Directory, fields: &[String]) -> Self {
        let full = Binding::full(dir);
        Binding { keys: full.keys.into_iter().filter(|(name, _)| fields.iter().any(|f| f == name)).collect() }
    }

    /// The `user` map for user `index`: missing attributes are absent.
    pub(crate) fn user(&self, dir: &'d Directory, index: usize) -> CelMap<'d> {
        let mut map: HashMap<CelMapKey<'d>, Box<dyn Val + 'd>> = HashMap::with_capacity(self.keys.len());
        if let Some(user) = dir.users.get(index) {
            for &(name, source) in &self.keys {
                let value: Option<Box<dyn Val + 'd>> = match source {
                    Source::Email => Some(Box::new(CelString::from(user.email.as_str()))),
                    Source::Attr(i) => user.attrs.get(i).and_then(attr_val),
                };
                if let Some(value) = value {
                    map.insert(CelMapKey::String(CelString::from(name)), value);
                }
            }
        }
        CelMap::from(map)
    }
}

/// A CEL value borrowing one attribute value; `None` for a missing one.
fn attr_val(value: &AttrValue) -> Option<Box<dyn Val + '_>> {
    Some(match value {
        AttrValue::Missing => return None,
        AttrValue::String(s) => Box::new(CelString::from(s.as_str())),
        AttrValue::List(items) => Box::new(CelList::from(
            items.iter().map(|s| Box::new(CelString::from(s.as_str())) as Box<dyn Val>).collect::<Vec<_>>(),
        )),
        AttrValue::Number(n) => Box::new(CelDouble::from(*n)),
        AttrValue::Bool(b) => Box::new(CelBool::from(*b)),
    })
}

/// Evaluates `expr` as a condition with `user` already bound in `ctx`.
pub(crate) fn verdict(expr: &IdedExpr, ctx: &Context<'_, '_>) -> Verdict {
    match Value::resolve_val(expr, ctx) {
        Ok(v) => match v.downcast_ref::<CelBool>() {
            Some(b) if *b.inner() => Verdict::True,
            Some(_) => Verdict::False,
            None => Verdict::Error,
        },
        Err(_) => Verdict::Error,
    }
}

/// Evaluates `expr` for user `index` (all keys bound): the value, or why it is no bool.
pub(crate) fn explain_user(expr: &IdedExpr, dir: &Directory, index: usize) -> Result<bool, String> {
    let mut ctx = Context::with_env(env());
    ctx.add_variable_as_val("user", Box::new(Binding::full(dir).user(dir, index)));
    match Value::resolve_val(expr, &ctx) {
        Ok(v) => match v.downcast_ref::<CelBool>() {
            Some(b) => Ok(*b.inner()),
            None => Err(format!("the selector gave a {}, not a bool", v.get_type().name())),
        },
        Err(e) => Err(describe(&e)),
    }
}

fn describe(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => format!("the user has no attribute `{key}`"),
        other => other.to_string(),
    }
}
