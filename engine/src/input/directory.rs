//! Reading the directory: one row per user, `email` plus the declared attributes.
//!
//! CSV has a header `email,<attribute>,…` (list attributes `;`-separated, an empty
//! cell is missing); JSON Lines has one object per line. Values are typed as the
//! workspace declares them; a value that does not fit its type makes the row bad.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{InputError, at, csv, extension, file_name, read_bytes, show};
use crate::diag::{Code, Diagnostic, Location};
use crate::directory::{AttrValue, Directory, User};
use crate::model::AttributeType;

/// Reads a directory file, CSV or JSON Lines by extension (`.jsonl`/`.ndjson`, else CSV).
///
/// Bad rows and duplicate emails are returned as diagnostics (errors) and left out;
/// unknown columns are warnings. Fails only when the file cannot be read or has no
/// usable header.
pub fn read_directory(
    path: &Path,
    attributes: &BTreeMap<String, AttributeType>,
) -> Result<(Directory, Vec<Diagnostic>), InputError> {
    let bytes = read_bytes(path)?;
    let jsonl = matches!(extension(path).as_str(), "jsonl" | "ndjson");
    parse_directory(&file_name(path), &bytes, jsonl, attributes)
        .map_err(|reason| InputError::Format { path: path.to_path_buf(), reason })
}

/// Parses directory text already read; `file` names it in diagnostics.
pub fn parse_directory(
    file: &Arc<str>,
    bytes: &[u8],
    jsonl: bool,
    attributes: &BTreeMap<String, AttributeType>,
) -> Result<(Directory, Vec<Diagnostic>), String> {
    let mut builder =
        Builder { dir: Directory::new(attributes), lines: Vec::new(), written: Vec::new(), out: Vec::new() };
    if jsonl {
        parse_jsonl(file, bytes, &mut builder);
    } else {
        parse_csv(file, bytes, &mut builder)?;
    }
    Ok((builder.dir, builder.out))
}

struct Builder {
    dir: Directory,
    /// The line of each user's row, by directory position.
    lines: Vec<u32>,
    /// How each user's email was written, by directory position, when not canonical.
    written: Vec<Option<Box<str>>>,
    out: Vec<Diagnostic>,
}

impl Builder {
    fn bad_row(&mut self, loc: Location, message: String) {
        self.out.push(
            Diagnostic::error(Code::DirectoryBadRow, message)
                .at(loc)
                .with_help("the row is left out of the directory; fix it in the source of the directory"),
        );
    }

    fn add(&mut self, file: &Arc<str>, line: u32, raw: &str, attrs: Vec<AttrValue>) {
        // The directory keys people by their canonical email, the form every other
        // input is compared in; a hidden character or a malformed address is a bad row.
        let email = match crate::identity::canonical_email(raw) {
            Ok(email) => email,
            Err(crate::identity::IdentityError::Empty) => {
                self.bad_row(at(file, line, 1), "row has no `email`".to_string());
                return;
            }
            Err(e) => {
                self.bad_row(at(file, line, 1), e.to_string());
                return;
            }
        };
        if let Some(first) = self.dir.position(&email) {
            let first_line = self.lines.get(first).copied().unwrap_or(0);
            let first_written = self.written.get(first).cloned().flatten();
            let written = raw.trim();
            let message = match (&first_written, written == email) {
                // Two spellings of one address: name both, so the admin sees why they collide.
                (Some(before), _) if **before != *written => format!(
                    "user `{email}` appears twice: `{}` on line {first_line} and `{}` are one person",
                    crate::identity::show(before),
                    crate::identity::show(written)
                ),
                (None, false) => format!(
                    "user `{email}` appears twice: `{email}` on line {first_line} and `{}` are one person",
                    crate::identity::show(written)
                ),
                _ => format!("user `{email}` appears twice"),
            };
            self.out.push(
                Diagnostic::error(Code::DirectoryDuplicateUser, message)
                    .at(at(file, line, 1))
                    .with_label("this row is ignored")
                    .with_secondary(at(file, first_line, 1), "first row for this user, which is kept")
                    .with_help(
                        "emails are compared trimmed, in Unicode NFC and lowercase: keep one row per person",
                    ),
            );
            return;
        }
        let written = (*email != *raw.trim()).then(|| Box::<str>::from(raw.trim()));
        if self.dir.push(User { email: email.into_owned(), attrs }) {
            self.lines.push(line);
            self.written.push(written);
        }
    }
}

/// Where each declared attribute comes from in a CSV row.
fn parse_csv(file: &Arc<str>, bytes: &[u8], b: &mut Builder) -> Result<(), String> {
    let mut reader = csv::Reader::new(bytes);
    let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
    let header: Vec<String> = match reader.next_record(&mut fields) {
        None => return Ok(()),
        Some((_, Err(e))) => return Err(format!("header: {}", e.message())),
        Some((_, Ok(()))) => fields.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect(),
    };
    let Some(email_col) = header.iter().position(|h| h == "email") else {
        return Err("the header has no `email` column".to_string());
    };
    // column of each declared attribute, in the directory's attribute order
    let mut columns: Vec<Option<usize>> = Vec::with_capacity(b.dir.attributes.len());
    for (name, _) in &b.dir.attributes {
        let col = header.iter().position(|h| h == name);
        if col.is_none() {
            b.out.push(
                Diagnostic::warning(
                    Code::DirectoryMissingColumn,
                    format!("declared attribute `{name}` has no column"),
                )
                .at(at(file, 1, 1))
                .with_help(format!("every user's `{name}` is missing; add a `{name}` column to the header")),
            );
        }
        columns.push(col);
    }
    for (i, h) in header.iter().enumerate() {
        if i != email_col && !b.dir.attributes.iter().any(|(n, _)| n == h) {
            let mut d = Diagnostic::warning(
                Code::DirectoryUnknownColumn,
                format!("column `{h}` is not a declared attribute"),
            )
            .at(at(file, 1, column_of(&header, i)))
            .with_label("ignored");
            let declared = b.dir.attributes.iter().map(|(n, _)| n.as_str());
            d = match crate::diag::did_you_mean(h, declared) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("declare it under `attributes:` in the Workspace to use it in selectors"),
            };
            b.out.push(d);
        }
    }
    let types: Vec<AttributeType> = b.dir.attributes.iter().map(|(_, t)| *t).collect();
    let names: Vec<String> = b.dir.attributes.iter().map(|(n, _)| n.clone()).collect();
    while let Some((line, result)) = reader.next_record(&mut fields) {
        if let Err(e) = result {
            b.bad_row(at(file, line, 1), e.message().to_string());
            continue;
        }
        if fields.len() != header.len() {
            b.bad_row(
                at(file, line, 1),
                format!("row has {} fields but the header has {}", fields.len(), header.len()),
            );
            continue;
        }
        let email = match std::str::from_utf8(&fields[email_col]) {
            Ok(s) => s.trim().to_string(),
            Err(_) => {
                b.bad_row(at(file, line, 1), "`email` is not valid UTF-8".to_string());
                continue;
            }
        };
        let mut attrs = Vec::with_capacity(columns.len());
        let mut bad = None;
        for (k, col) in columns.iter().enumerate() {
            let Some(col) = *col else {
                attrs.push(AttrValue::Missing);
                continue;
            };
            match std::str::from_utf8(&fields[col]) {
                Ok(text) => match typed_from_text(text, types[k]) {
                    Ok(v) => attrs.push(v),
                    Err(why) => {
                        bad = Some((col, format!("`{}` {why}", names[k])));
                        break;
                    }
                },
                Err(_) => {
                    bad = Some((col, format!("`{}` is not valid UTF-8", names[k])));
                    break;
                }
            }
        }
        if let Some((_, msg)) = bad {
            b.bad_row(at(file, line, 1), msg);
            continue;
        }
        b.add(file, line, &email, attrs);
    }
    Ok(())
}

/// The 1-based column of a header field, for pointing at it.
fn column_of(header: &[String], index: usize) -> u32 {
    let chars: usize = header[..index].iter().map(|h| h.chars().count() + 1).sum();
    u32::try_from(chars + 1).unwrap_or(u32::MAX)
}

/// A CSV cell typed as declared; an empty cell is missing.
fn typed_from_text(text: &str, ty: AttributeType) -> Result<AttrValue, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(AttrValue::Missing);
    }
    Ok(match ty {
        AttributeType::String => AttrValue::String(text.to_string()),
        AttributeType::List => AttrValue::List(
            text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        ),
        AttributeType::Number => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => AttrValue::Number(n),
            _ => return Err(format!("`{}` is not a number", show(text.as_bytes()))),
        },
        AttributeType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" => AttrValue::Bool(true),
            "false" => AttrValue::Bool(false),
            _ => return Err(format!("`{}` is not `true` or `false`", show(text.as_bytes()))),
        },
    })
}

/// A JSON value typed as declared; `null` is missing.
fn typed_from_json(value: &serde_json::Value, ty: AttributeType) -> Result<AttrValue, String> {
    use serde_json::Value;
    Ok(match (value, ty) {
        (Value::Null, _) => AttrValue::Missing,
        (Value::String(s), _) => typed_from_text(s, ty)?,
        (Value::Number(n), AttributeType::Number) => {
            AttrValue::Number(n.as_f64().ok_or_else(|| format!("`{n}` is not a number"))?)
        }
        (Value::Number(n), AttributeType::String) => AttrValue::String(n.to_string()),
        (Value::Bool(v), AttributeType::Bool) => AttrValue::Bool(*v),
        (Value::Array(items), AttributeType::List) => AttrValue::List(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("has a list item `{other}` that is not a string")),
                })
                .collect::<Result<_, _>>()?,
        ),
        (other, ty) => {
            let want = match ty {
                AttributeType::String => "a string",
                AttributeType::List => "a list of strings",
                AttributeType::Number => "a number",
                AttributeType::Bool => "`true` or `false`",
            };
            return Err(format!("is `{}`, expected {want}", show(other.to_string().as_bytes())));
        }
    })
}

fn parse_jsonl(file: &Arc<str>, bytes: &[u8], b: &mut Builder) {
    let mut unknown_reported: Vec<String> = Vec::new();
    let types: Vec<(String, AttributeType)> = b.dir.attributes.clone();
    for (index, raw) in bytes.split(|&c| c == b'\n').enumerate() {
        let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                b.bad_row(at(file, line, u32::try_from(e.column()).unwrap_or(1)), format!("not JSON: {e}"));
                continue;
            }
        };
        let Some(obj) = value.as_object() else {
            b.bad_row(at(file, line, 1), "expected a JSON object".to_string());
            continue;
        };
        let email = match obj.get("email") {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            _ => {
                b.bad_row(at(file, line, 1), "row has no `email` string".to_string());
                continue;
            }
        };
        for key in obj.keys() {
            if key != "email" && !types.iter().any(|(n, _)| n == key) && !unknown_reported.contains(key) {
                unknown_reported.push(key.clone());
                b.out.push(
                    Diagnostic::warning(
                        Code::DirectoryUnknownColumn,
                        format!("field `{key}` is not a declared attribute"),
                    )
                    .at(at(file, line, 1))
                    .with_label("ignored in every row")
                    .with_help("declare it under `attributes:` in the Workspace to use it in selectors"),
                );
            }
        }
        let mut attrs = Vec::with_capacity(types.len());
        let mut bad = None;
        for (name, ty) in &types {
            match obj.get(name).map(|v| typed_from_json(v, *ty)).unwrap_or(Ok(AttrValue::Missing)) {
                Ok(v) => attrs.push(v),
                Err(why) => {
                    bad = Some(format!("`{name}` {why}"));
                    break;
                }
            }
        }
        if let Some(msg) = bad {
            b.bad_row(at(file, line, 1), msg);
            continue;
        }
        b.add(file, line, &email, attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> BTreeMap<String, AttributeType> {
        [
            ("department".to_string(), AttributeType::String),
            ("idp_groups".to_string(), AttributeType::List),
            ("level".to_string(), AttributeType::Number),
            ("manager".to_string(), AttributeType::Bool),
        ]
        .into()
    }

    fn codes(d: &[Diagnostic]) -> Vec<(Code, u32)> {
        d.iter().map(|d| (d.code, d.location.as_ref().map_or(0, |l| l.line))).collect()
    }

    #[test]
    fn reads_typed_csv() {
        let text = "email,department,idp_groups,level,manager,extra\n\
                    a@x.com,Eng,eng;all, 3 ,true,z\n\
                    b@x.com,,,,,\n\
                    c@x.com,\"Sales, EMEA\",,x,false,\n\
                    a@x.com,Eng,,,,\n\
                    nope,Eng,,,,\n";
        let (dir, diags) = parse_directory(&"dir.csv".into(), text.as_bytes(), false, &attrs()).unwrap();
        assert_eq!(dir.len(), 2);
        let a = dir.get("a@x.com").unwrap();
        assert_eq!(a.attrs[0], AttrValue::String("Eng".into()));
        assert_eq!(a.attrs[1], AttrValue::List(vec!["eng".into(), "all".into()]));
        assert_eq!(a.attrs[2], AttrValue::Number(3.0));
        assert_eq!(a.attrs[3], AttrValue::Bool(true));
        assert!(dir.get("b@x.com").unwrap().attrs.iter().all(|v| *v == AttrValue::Missing));
        assert_eq!(
            codes(&diags),
            vec![
                (Code::DirectoryUnknownColumn, 1),
                (Code::DirectoryBadRow, 4),
                (Code::DirectoryDuplicateUser, 5),
                (Code::DirectoryBadRow, 6)
            ]
        );
        assert!(diags[1].message.contains("`level` `x` is not a number"), "{}", diags[1].message);
        assert_eq!(diags[2].labels[0].location.line, 2);
    }

    #[test]
    fn reads_typed_jsonl() {
        let text = "{\"email\":\"a@x.com\",\"idp_groups\":[\"g\"],\"level\":2,\"manager\":false}\n\
                    \n\
                    {\"email\":\"b@x.com\",\"level\":\"high\"}\n\
                    {broken\n";
        let (dir, diags) = parse_directory(&"dir.jsonl".into(), text.as_bytes(), true, &attrs()).unwrap();
        assert_eq!(dir.len(), 1);
        assert_eq!(dir.users[0].attrs[1], AttrValue::List(vec!["g".into()]));
        assert_eq!(codes(&diags), vec![(Code::DirectoryBadRow, 3), (Code::DirectoryBadRow, 4)]);
    }

    #[test]
    fn two_spellings_of_one_email_are_one_user_and_the_second_row_is_refused() {
        let text = "email,department\n\
                    Zoe@Acme.com,Eng\n\
                    bob@acme.com,Eng\n\
                    \" zoe@acme.COM \",Sales\n\
                    bob@acme.com,Ops\n";
        let (dir, diags) = parse_directory(&"dir.csv".into(), text.as_bytes(), false, &attrs()).unwrap();
        let diags: Vec<Diagnostic> =
            diags.into_iter().filter(|d| d.code != Code::DirectoryMissingColumn).collect();
        assert_eq!(
            dir.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
            ["zoe@acme.com", "bob@acme.com"]
        );
        assert_eq!(dir.get("ZOE@acme.com").map(|u| &u.attrs[0]), Some(&AttrValue::String("Eng".into())));
        assert_eq!(codes(&diags), vec![(Code::DirectoryDuplicateUser, 4), (Code::DirectoryDuplicateUser, 5)]);
        assert_eq!(
            diags[0].message,
            "user `zoe@acme.com` appears twice: `Zoe@Acme.com` on line 2 and `zoe@acme.COM` are one person"
        );
        assert_eq!(diags[0].labels[0].location.line, 2);
        assert_eq!(diags[1].message, "user `bob@acme.com` appears twice");
    }

    #[test]
    fn hidden_characters_in_an_email_make_the_row_bad() {
        let text = "{\"email\":\"eve@acme.com\"}\n{\"email\":\"eve\\u200b@acme.com\"}\n{\"email\":\"\\u202eeve@acme.com\"}\n";
        let (dir, diags) = parse_directory(&"dir.jsonl".into(), text.as_bytes(), true, &attrs()).unwrap();
        assert_eq!(dir.len(), 1);
        assert_eq!(codes(&diags), vec![(Code::DirectoryBadRow, 2), (Code::DirectoryBadRow, 3)]);
        assert!(
            diags[0].message.contains("`eve\\u{200b}@acme.com` contains a zero-width character, U+200B"),
            "{}",
            diags[0].message
        );
        assert!(
            diags[1].message.contains("a bidirectional control character, U+202E"),
            "{}",
            diags[1].message
        );
    }

    #[test]
    fn needs_an_email_column() {
        assert!(parse_directory(&"d.csv".into(), b"name\nx\n", false, &attrs()).is_err());
    }
}
