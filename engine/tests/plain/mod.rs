//! JSON values for insta snapshots.
//!
//! serde_json keeps numbers exact (its `arbitrary_precision` feature), and an exact
//! number serializes to anything but JSON as serde_json's private one-field struct.
//! [`Plain`] hands insta plain integers and floats instead, so snapshots show
//! numbers, and the exact text (quoted) of a number no float prints exactly.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A JSON value whose numbers serialize as integers or floats.
pub struct Plain<'a>(pub &'a Value);

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => s.serialize_u64(u),
                (_, Some(i), _) => s.serialize_i64(i),
                // a float only when it prints back as the exact text; else the text
                (_, _, Some(f))
                    if serde_json::Number::from_f64(f).is_some_and(|x| x.as_str() == n.as_str()) =>
                {
                    s.serialize_f64(f)
                }
                _ => s.serialize_str(n.as_str()),
            },
            Value::Array(items) => s.collect_seq(items.iter().map(Plain)),
            Value::Object(map) => s.collect_map(map.iter().map(|(k, v)| (k, Plain(v)))),
            other => other.serialize(s),
        }
    }
}
