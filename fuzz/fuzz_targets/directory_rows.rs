//! The directory readers: `input::parse_directory` on CSV (first byte even) or
//! JSON Lines (odd), against a workspace declaring one attribute of each type.
//!
//! Laws beyond "no panic":
//! - every user kept has one value per declared attribute, of the declared type
//!   (or missing), and no email is kept twice;
//! - every finding points at a line of the input;
//! - the directory read, written back as JSON Lines, reads back as the same users
//!   with no finding.
#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use budgit_engine::directory::{AttrValue, Directory};
use budgit_engine::input::parse_directory;
use budgit_engine::model::AttributeType;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let jsonl = selector % 2 == 1;
    let attributes = attributes();
    let file: Arc<str> = Arc::from("directory");
    let Ok((dir, findings)) = parse_directory(&file, bytes, jsonl, &attributes) else { return };

    let lines = bytes.split(|&b| b == b'\n').count();
    for d in &findings {
        if let Some(at) = &d.location {
            assert!(at.line as usize <= lines, "finding at line {} of a {lines}-line input: {d:?}", at.line);
        }
    }
    let mut seen = HashSet::new();
    for user in &dir.users {
        assert!(seen.insert(user.email.as_str()), "`{}` kept twice", user.email);
        assert_eq!(user.attrs.len(), dir.attributes.len(), "`{}` has the wrong number of values", user.email);
        for (value, (name, ty)) in user.attrs.iter().zip(&dir.attributes) {
            let fits = matches!(
                (value, ty),
                (AttrValue::Missing, _)
                    | (AttrValue::String(_), AttributeType::String)
                    | (AttrValue::List(_), AttributeType::List)
                    | (AttrValue::Bool(_), AttributeType::Bool)
            ) || matches!((value, ty), (AttrValue::Number(n), AttributeType::Number) if n.is_finite());
            assert!(fits, "`{}` has `{name}` = {value:?}, declared {ty:?}", user.email);
        }
    }

    let text = to_jsonl(&dir);
    let again = parse_directory(&file, text.as_bytes(), true, &attributes);
    let (again, findings) =
        again.unwrap_or_else(|e| panic!("written back, the directory is refused: {e}\n{text}"));
    assert!(findings.is_empty(), "written back, the directory has findings: {findings:?}\n{text}");
    assert_eq!(again.users, dir.users, "written back, the users differ\n{text}");
});

/// One declared attribute of each type.
fn attributes() -> BTreeMap<String, AttributeType> {
    BTreeMap::from([
        ("contractor".to_string(), AttributeType::Bool),
        ("department".to_string(), AttributeType::String),
        ("idp_groups".to_string(), AttributeType::List),
        ("level".to_string(), AttributeType::Number),
    ])
}

fn to_jsonl(dir: &Directory) -> String {
    let mut out = String::new();
    for user in &dir.users {
        let mut obj = Map::new();
        obj.insert("email".to_string(), json!(user.email));
        for (value, (name, _)) in user.attrs.iter().zip(&dir.attributes) {
            let v = match value {
                AttrValue::Missing => Value::Null,
                AttrValue::String(s) => json!(s),
                AttrValue::List(items) => json!(items),
                AttrValue::Number(n) => json!(n),
                AttrValue::Bool(b) => json!(b),
            };
            obj.insert(name.clone(), v);
        }
        out.push_str(&Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}
