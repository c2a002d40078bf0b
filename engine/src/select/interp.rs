//! The reference semantics: binding a user as the CEL map `user` and running the `cel` interpreter.
//!
//! Everything the fast path computes must equal what these functions give; the
//! property tests compare the two.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::objects::Map;
use cel::{Context, Env, IdedExpr as Expression, Value};

use crate::directory::{AttrValue, Directory};

use super::bits::Verdict;

/// The standard CEL environment, built once: building it costs ≈ 20 µs.
pub(crate) fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(Env::stdlib())))
}

/// A CEL value for one attribute value; `None` for a missing one (absent from the map).
fn attr_value(value: &AttrValue) -> Option<Value> {
    match value {
        AttrValue::Missing => None,
        AttrValue::String(s) => Some(Value::String(Arc::new(s.clone()))),
        AttrValue::List(items) => {
            Some(Value::List(Arc::new(items.iter().map(|s| Value::String(Arc::new(s.clone()))).collect())))
        }
        AttrValue::Number(n) => Some(Value::Float(*n)),
        AttrValue::Bool(b) => Some(Value::Bool(*b)),
    }
}

/// The map bound as `user`: `email` plus every present attribute of user `index`.
///
/// `email` is always the user's email, even when an attribute has that name.
pub(crate) fn user_value(dir: &Directory, index: usize) -> Value {
    let Some(user) = dir.users.get(index) else {
        return Value::Map(Map::from(HashMap::<String, Value>::new()));
    };
    let mut map: HashMap<String, Value> = HashMap::with_capacity(dir.attributes.len() + 1);
    for ((name, _), value) in dir.attributes.iter().zip(&user.attrs) {
        if let Some(value) = attr_value(value) {
            map.insert(name.clone(), value);
        }
    }
    map.insert("email".to_owned(), Value::String(Arc::new(user.email.clone())));
    Value::Map(Map::from(map))
}

/// The outcome of one evaluation used as a condition: anything but a bool is an error.
pub(crate) fn verdict_of(result: &Result<Value, cel::ExecutionError>) -> Verdict {
    match result {
        Ok(Value::Bool(true)) => Verdict::True,
        Ok(Value::Bool(false)) => Verdict::False,
        _ => Verdict::Error,
    }
}

/// A description of a failed evaluation, for reports and `explain`.
pub(crate) fn describe_failure(result: &Result<Value, cel::ExecutionError>) -> Option<String> {
    match result {
        Ok(Value::Bool(_)) => None,
        Ok(other) => Some(format!("the selector gave a {}, not a bool", type_name(other))),
        Err(e) => Some(e.to_string()),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Duration(_) => "duration",
        Value::Timestamp(_) => "timestamp",
        _ => "value",
    }
}

/// Evaluates `expr` for user `index` with a fresh context on `env`.
pub(crate) fn eval_user(
    env: &Arc<Env>,
    expr: &Expression,
    dir: &Directory,
    index: usize,
) -> Result<Value, cel::ExecutionError> {
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.add_variable_from_value("user", user_value(dir, index));
    Value::resolve(expr, &ctx)
}
