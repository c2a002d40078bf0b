//! Editing policy YAML as text: a group's limit, caps and pool changed in place, and
//! new Override files written, so that a proposal touches only what it changes.
//!
//! A reviewer reads the diff of a proposal, so an edit keeps the file's comments,
//! layout and style: only the scalars that change are rewritten, a new cap or pool
//! is one inserted entry in the mapping's style and indentation, a removed one its
//! lines. Every edit is checked by parsing the result again: it must give exactly
//! the old documents with the asked values changed, or the edit is refused with an
//! [`EditError`] and the file is left to a person. Text the editor writes (cap names,
//! emails, reasons) is a plain YAML scalar only when it reads back as the same
//! string, else double-quoted through [`crate::load::yaml::double_quoted`].
//!
//! Shared by the console's proposals and credit requests and by `budgit request`
//! ([`crate::request`] names and dates the Override; [`write_override`] writes it).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::Credits;
use crate::load::yaml::{Node, Value as YamlValue, parse_documents};
use crate::model::Group;

#[cfg(test)]
mod tests;

/// Why an edit was refused; the file is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// An alias, an anchor in the way, or a layout the editor cannot follow.
    #[error("cannot edit `{what}` in place (an alias or an unusual layout): change the file by hand")]
    NotEditable {
        /// The field (`limit.credits`) or `the group`.
        what: String,
    },
    /// A removal of a cap the group does not have.
    #[error("group `{group}` has no `limit.{kind}.{name}` cap to remove")]
    NoSuchCap {
        /// The group's name.
        group: String,
        /// `products` or `models`.
        kind: &'static str,
        /// The cap asked to go.
        name: String,
    },
    /// A cap name that is not a product or model name.
    #[error(
        "`{0}` is not a product or model name: use 1 to 128 letters, digits and `.` `_` `-` `:` `/` `@` `+`"
    )]
    BadCapName(String),
    /// The file does not parse (before or after the edit).
    #[error("{0}")]
    Unparsable(String),
}

/// A product or model name the editor writes as a cap key: 1 to 128 characters,
/// starting with a letter or digit, of letters, digits and `.` `_` `-` `:` `/` `@` `+`.
pub fn cap_name_ok(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@' | '+'))
}

/// `text` as a YAML scalar: plain when a reader gives back exactly that string, else
/// double-quoted.
///
/// Plain means a letter first (a digit could read as a number: `0o7`, `1e5`), then
/// only letters, digits and `.` `_` `%` `+` `-` `@` (no `:`, `#`, spaces or flow
/// brackets), and not a word YAML 1.1 readers take for a boolean or null.
pub fn scalar(text: &str) -> String {
    let plain = text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '@'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain { text.to_owned() } else { crate::load::yaml::double_quoted(text) }
}

/// A new Override document, as [`write_override`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOverride<'a> {
    /// The document's `name`.
    pub name: &'a str,
    /// The user's email, canonical.
    pub user: &'a str,
    /// `add` (credits on top of the resolved limit) or `limit` (a total replacing it).
    pub field: OverrideField,
    /// How many credits.
    pub credits: Credits,
    /// The first day.
    pub starts: NaiveDate,
    /// The day it stops applying (exclusive).
    pub expires: NaiveDate,
    /// Why (trimmed).
    pub reason: &'a str,
    /// Who asked, when not the user.
    pub requested_by: Option<&'a str>,
    /// The product or model cap raised with the total (`add:` only): a person blocked on
    /// that cap would stay blocked by a raise of the total alone.
    pub cap: Option<(CapSort, &'a str)>,
    /// Context for reviewers, written as a comment above `reason:` (one line, at most
    /// [`MAX_NOTE`] characters; line breaks and control characters become spaces).
    pub note: Option<&'a str>,
    /// The policy directory inside the repository (`policies`, or empty at the root):
    /// the `$schema` header points from the new file to the repository's `schemas/`.
    pub dir: &'a str,
}

/// Which amount an Override sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideField {
    /// `add:` credits on top of the resolved limit.
    Add,
    /// `limit:` a total replacing the resolved one.
    Limit,
}

/// Which caps a [`NewOverride`] raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSort {
    /// A product cap (`products:`).
    Product,
    /// A model cap (`models:`).
    Model,
}

impl CapSort {
    /// The key the caps are listed under.
    pub fn key(self) -> &'static str {
        match self {
            CapSort::Product => "products",
            CapSort::Model => "models",
        }
    }
}

/// The longest context note written into an Override (characters).
pub const MAX_NOTE: usize = 500;

/// A note as one comment line: no line break or control character survives (a YAML
/// comment ends at a line break, and some readers treat U+2028 and U+0085 as one),
/// at most [`MAX_NOTE`] characters.
pub fn comment_line(note: &str) -> String {
    let flat: String = note
        .chars()
        .map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') { ' ' } else { c })
        .collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() > MAX_NOTE {
        let cut: String = joined.chars().take(MAX_NOTE - 1).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

/// The text of a new Override file (under `overrides/`, one level below the policy
/// directory), every user-given value quoted by [`scalar`] or double-quoted.
pub fn write_override(o: &NewOverride<'_>) -> String {
    let depth = o.dir.split('/').filter(|p| !p.is_empty()).count() + 1;
    let up = "../".repeat(depth);
    let field = match o.field {
        OverrideField::Add => "add",
        OverrideField::Limit => "limit",
    };
    // A replacing `limit:` has no caps at all, so only `add:` names the cap it raises.
    let cap = match (o.field, o.cap) {
        (OverrideField::Add, Some((kind, name))) => {
            format!("  {}:\n    {}: {}\n", kind.key(), scalar(name), o.credits)
        }
        _ => String::new(),
    };
    let note = o
        .note
        .map(comment_line)
        .filter(|n| !n.is_empty())
        .map(|n| format!("# Context: {n}\n"))
        .unwrap_or_default();
    let mut text = format!(
        "# yaml-language-server: $schema={up}schemas/override.schema.json\n\
         apiVersion: budgit/v1\n\
         kind: Override\n\
         name: {name}\n\
         user: {user}\n\
         {field}:\n  credits: {credits}\n\
         {cap}\
         starts: {starts}\n\
         expires: {expires}\n\
         {note}\
         reason: {reason}\n",
        name = scalar(o.name),
        user = scalar(o.user),
        credits = o.credits,
        starts = o.starts.format("%Y-%m-%d"),
        expires = o.expires.format("%Y-%m-%d"),
        reason = crate::load::yaml::double_quoted(o.reason),
    );
    if let Some(by) = o.requested_by {
        text.push_str(&format!("requested_by: {}\n", scalar(by)));
    }
    text
}

// ---------------------------------------------------------------------------
// A group's limit, caps and pool, in place

/// What a proposal changes in a group; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupChange {
    /// The new `limit.credits`.
    pub credits: Option<Credits>,
    /// The new `pool.credits`; `Some(None)` removes the pool.
    pub pool: Option<Option<Credits>>,
    /// Product caps: `Some` sets a cap (adding it when the group has none), `None` removes it.
    pub products: BTreeMap<String, Option<Credits>>,
    /// Model caps, as `products`.
    pub models: BTreeMap<String, Option<Credits>>,
}

/// One kind of caps (`products` or `models`): its name, the group's caps and the asked changes.
type CapKind<'a> = (&'static str, &'a BTreeMap<String, Credits>, &'a BTreeMap<String, Option<Credits>>);

impl GroupChange {
    /// The cap changes of each kind, with the group's caps of that kind.
    fn caps<'a>(&'a self, group: &'a Group) -> [CapKind<'a>; 2] {
        [("products", &group.limit.products, &self.products), ("models", &group.limit.models, &self.models)]
    }
}

/// One changed value, for the commit message and the response.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The field's path: `limit.credits`, `limit.products.codex`, `pool.credits`.
    pub field: String,
    /// The value before; `None` when the field was absent.
    pub before: Option<Credits>,
    /// The value after; `None` when the field goes.
    pub after: Option<Credits>,
}

impl Changed {
    /// `field: before → after`, `none` for an absent value.
    pub fn line(&self) -> String {
        let show = |c: Option<Credits>| c.map_or_else(|| "none".to_string(), |c| c.to_string());
        format!("{}: {} → {}", self.field, show(self.before), show(self.after))
    }
}

/// The start of the line holding `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1)
}

/// Moves `pos` (a line start) up over blank and comment lines, not above `floor`:
/// comments above a key belong to that key.
fn back_over_trivia(text: &str, mut pos: usize, floor: usize) -> usize {
    while pos > floor {
        let prev = line_start(text, pos - 1).max(floor);
        let line = text[prev..pos].trim();
        if line.is_empty() || line.starts_with('#') {
            pos = prev;
        } else {
            break;
        }
    }
    pos
}

/// Where the document holding `offset` ends: the next `---` line, or the end of the file.
fn document_end(text: &str, offset: usize) -> usize {
    let mut pos = line_start(text, offset);
    for line in text[pos..].split_inclusive('\n') {
        if pos > offset && line.starts_with("---") {
            return pos;
        }
        pos += line.len();
    }
    text.len()
}

/// Where a one-line scalar that starts at `start` ends (quotes included).
fn scalar_end(text: &str, start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let len = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].find(q).map(|i| i + 2)?,
        _ => rest.find([' ', '\t', '\r', '\n', ',', '}', ']', '#']).unwrap_or(rest.len()),
    };
    Some(start + len)
}

/// The byte range of a scalar's text (quotes included), checked to hold `expected`.
fn scalar_range(text: &str, node: &Node, expected: Credits) -> Option<(usize, usize)> {
    let start = node.pos.offset;
    let end = scalar_end(text, start)?;
    let token = text[start..end].trim_matches(['"', '\'']);
    // The span must be the value itself (not an anchor elsewhere or a neighbour).
    (token.parse::<Credits>().ok() == Some(expected)).then_some((start, end))
}

/// The start of the line after the one holding `offset` (the end of the text on the last line).
fn line_end(text: &str, offset: usize) -> usize {
    text.get(offset..).and_then(|rest| rest.find('\n')).map_or(text.len(), |i| offset + i + 1)
}

/// True when the node is written in flow style (`{ … }` or `[ … ]`).
fn is_flow(text: &str, node: &Node) -> bool {
    matches!(text.as_bytes().get(node.pos.offset), Some(b'{' | b'['))
}

/// The offset of the bracket closing the flow collection that opens at `open`.
fn flow_close(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            q @ (b'"' | b'\'') => {
                // a quoted scalar: skip to its closing quote ('' and \" are escapes)
                i += 1;
                while i < bytes.len() {
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    } else if bytes[i] == q {
                        if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'#' if i > 0 && matches!(bytes[i - 1], b' ' | b'\t' | b'\n') => {
                i = line_end(text, i).checked_sub(1)?;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a node's text ends: a scalar's last character, a flow collection's closing
/// bracket, or the end of the last entry of a block collection (plus one).
fn node_end(text: &str, node: &Node) -> Option<usize> {
    if is_flow(text, node) {
        return flow_close(text, node.pos.offset).map(|c| c + 1);
    }
    match &node.value {
        YamlValue::Map(entries) => node_end(text, &entries.last()?.1),
        YamlValue::Seq(items) => node_end(text, items.last()?),
        _ => scalar_end(text, node.pos.offset),
    }
}

/// True when nothing but indentation precedes the node on its line.
fn at_line_start(text: &str, node: &Node) -> bool {
    text[line_start(text, node.pos.offset)..node.pos.offset].trim().is_empty()
}

/// One replacement of the text.
struct Splice {
    start: usize,
    end: usize,
    text: String,
}

fn not_editable(what: &str) -> EditError {
    EditError::NotEditable { what: what.to_owned() }
}

/// The splice replacing the scalar at `pointer` (checked to hold `old`) with `new`.
fn replace_scalar(
    text: &str,
    doc: &Node,
    pointer: &str,
    field: &str,
    old: Credits,
    new: Credits,
) -> Result<Splice, EditError> {
    let node = doc.pointer(pointer).ok_or_else(|| not_editable(field))?;
    let (start, end) = scalar_range(text, node, old).ok_or_else(|| not_editable(field))?;
    Ok(Splice { start, end, text: new.to_string() })
}

/// A cap name as a YAML key: plain when it reads back as that string, else double-quoted.
fn yaml_key(name: &str) -> String {
    scalar(name)
}

/// The splice adding `key: value` as the last entry of the mapping `map`, in its style and indentation.
fn insert_entry(text: &str, map: &Node, key: &str, value: &str, field: &str) -> Result<Splice, EditError> {
    if is_flow(text, map) {
        let close = flow_close(text, map.pos.offset).ok_or_else(|| not_editable(field))?;
        let at = text[..close].trim_end().len();
        let sep = if text[..at].ends_with('{') { " " } else { ", " };
        return Ok(Splice { start: at, end: at, text: format!("{sep}{key}: {value}") });
    }
    let YamlValue::Map(entries) = &map.value else {
        return Err(not_editable(field));
    };
    let (Some((first, _)), Some((last_key, last))) = (entries.first(), entries.last()) else {
        return Err(not_editable(field));
    };
    if !at_line_start(text, first) || !at_line_start(text, last_key) {
        return Err(not_editable(field));
    }
    let at = line_end(text, node_end(text, last).ok_or_else(|| not_editable(field))?);
    let indent = " ".repeat(first.pos.column.saturating_sub(1) as usize);
    let newline = if at > 0 && !text[..at].ends_with('\n') { "\n" } else { "" };
    Ok(Splice { start: at, end: at, text: format!("{newline}{indent}{key}: {value}\n") })
}

/// The splice removing the entry `key` (its lines) from the block mapping `map`.
fn remove_entry(text: &str, map: &Node, key: &str, field: &str) -> Result<Splice, EditError> {
    let YamlValue::Map(entries) = &map.value else {
        return Err(not_editable(field));
    };
    let (k, v) = entries.iter().find(|(k, _)| k.as_str() == Some(key)).ok_or_else(|| not_editable(field))?;
    if is_flow(text, map) || !at_line_start(text, k) {
        return Err(not_editable(field));
    }
    let end = line_end(text, node_end(text, v).ok_or_else(|| not_editable(field))?);
    Ok(Splice { start: line_start(text, k.pos.offset), end, text: String::new() })
}

/// The splices that set, add and remove the caps of one kind (`products` or `models`)
/// inside the limit mapping `limit`. A removal of a cap the group lacks is refused before.
fn cap_splices(
    text: &str,
    limit: &Node,
    kind: &str,
    caps: &BTreeMap<String, Credits>,
    asked: &BTreeMap<String, Option<Credits>>,
) -> Result<Vec<Splice>, EditError> {
    let field = format!("limit.{kind}");
    let added: Vec<(&String, Credits)> = asked
        .iter()
        .filter_map(|(name, c)| c.filter(|_| !caps.contains_key(name)).map(|c| (name, c)))
        .collect();
    let removes = asked.values().any(Option::is_none);
    let Some(node) = limit.get(kind) else {
        if added.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<String> = added.iter().map(|(n, c)| format!("{}: {c}", yaml_key(n))).collect();
        return Ok(vec![insert_entry(text, limit, kind, &format!("{{ {} }}", items.join(", ")), &field)?]);
    };
    let YamlValue::Map(entries) = &node.value else {
        return Err(not_editable(&field));
    };
    let cap_of = |name: &str| caps.get(name).copied().ok_or_else(|| not_editable(&field));
    if added.is_empty() && !removes {
        // only values change: each in place
        let mut out = Vec::new();
        for (k, v) in entries {
            let name = k.scalar_text();
            if let Some(Some(new)) = asked.get(&name) {
                let (start, end) = scalar_range(text, v, cap_of(&name)?)
                    .ok_or_else(|| not_editable(&format!("{field}.{name}")))?;
                out.push(Splice { start, end, text: new.to_string() });
            }
        }
        return Ok(out);
    }
    let kept = entries.iter().filter(|(k, _)| !matches!(asked.get(&k.scalar_text()), Some(None))).count();
    if kept == 0 && added.is_empty() {
        // every cap of this kind goes: so does the mapping
        return Ok(vec![remove_entry(text, limit, kind, &field)?]);
    }
    if is_flow(text, node) {
        // one line, rewritten with the same entries in the same order, the new ones last
        let close = flow_close(text, node.pos.offset).ok_or_else(|| not_editable(&field))?;
        if text[node.pos.offset..close].contains(['\n', '#']) {
            return Err(not_editable(&field));
        }
        let mut items = Vec::new();
        for (k, v) in entries {
            let name = k.scalar_text();
            match asked.get(&name) {
                Some(None) => {}
                Some(Some(new)) => items.push(format!("{}: {new}", yaml_key(&name))),
                None => {
                    let (start, end) =
                        scalar_range(text, v, cap_of(&name)?).ok_or_else(|| not_editable(&field))?;
                    items.push(format!("{}: {}", yaml_key(&name), &text[start..end]));
                }
            }
        }
        items.extend(added.iter().map(|(n, c)| format!("{}: {c}", yaml_key(n))));
        return Ok(vec![Splice {
            start: node.pos.offset,
            end: close + 1,
            text: format!("{{ {} }}", items.join(", ")),
        }]);
    }
    // a block mapping: one line per cap; removed lines go, new lines follow the last one
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = k.scalar_text();
        match asked.get(&name) {
            Some(None) => out.push(remove_entry(text, node, &name, &field)?),
            Some(Some(new)) => {
                let (start, end) =
                    scalar_range(text, v, cap_of(&name)?).ok_or_else(|| not_editable(&field))?;
                out.push(Splice { start, end, text: new.to_string() });
            }
            None => {}
        }
    }
    for (name, c) in added {
        out.push(insert_entry(text, node, &yaml_key(name), &c.to_string(), &field)?);
    }
    Ok(out)
}

/// Refuses to remove a cap the group does not have: the request names something that is not there.
pub fn check_removals(group: &Group, change: &GroupChange) -> Result<(), EditError> {
    for (kind, caps, asked) in change.caps(group) {
        if let Some(name) = asked.iter().find(|(n, c)| c.is_none() && !caps.contains_key(*n)).map(|(n, _)| n)
        {
            return Err(EditError::NoSuchCap { group: group.name.clone(), kind, name: name.clone() });
        }
    }
    Ok(())
}

/// The splices that apply `change` to the group document `doc` in `text`.
fn plan_splices(
    text: &str,
    doc: &Node,
    group: &Group,
    change: &GroupChange,
) -> Result<Vec<Splice>, EditError> {
    check_removals(group, change)?;
    let mut splices = Vec::new();
    if let Some(c) = change.credits {
        splices.push(replace_scalar(text, doc, "/limit/credits", "limit.credits", group.limit.credits, c)?);
    }
    let limit = doc.get("limit").ok_or_else(|| not_editable("limit"))?;
    for (kind, caps, asked) in change.caps(group) {
        if !asked.is_empty() {
            splices.extend(cap_splices(text, limit, kind, caps, asked)?);
        }
    }
    let Some(pool) = change.pool else {
        return Ok(splices);
    };
    let YamlValue::Map(entries) = &doc.value else {
        return Err(not_editable("pool"));
    };
    let end_of_doc = document_end(text, doc.pos.offset);
    // The end of the entry at `i`: the next key's line (without the comments above it), or the document's end.
    let entry_end = |i: usize| -> usize {
        let next = entries.get(i + 1).map_or(end_of_doc, |(k, _)| line_start(text, k.pos.offset));
        back_over_trivia(text, next, line_start(text, entries[i].0.pos.offset))
    };
    match (&group.pool, pool) {
        (Some(old), Some(new)) => {
            splices.push(replace_scalar(text, doc, "/pool/credits", "pool.credits", old.credits, new)?);
        }
        (Some(_), None) => {
            let i = entries
                .iter()
                .position(|(k, _)| k.as_str() == Some("pool"))
                .ok_or_else(|| not_editable("pool"))?;
            if !at_line_start(text, &entries[i].0) {
                return Err(not_editable("pool"));
            }
            splices.push(Splice {
                start: line_start(text, entries[i].0.pos.offset),
                end: entry_end(i),
                text: String::new(),
            });
        }
        (None, Some(new)) => {
            let i = entries
                .iter()
                .position(|(k, _)| k.as_str() == Some("limit"))
                .ok_or_else(|| not_editable("pool"))?;
            let key = &entries[i].0;
            if !at_line_start(text, key) {
                return Err(not_editable("pool"));
            }
            let indent = " ".repeat(key.pos.column.saturating_sub(1) as usize);
            let at = entry_end(i);
            let newline = if at > 0 && !text[..at].ends_with('\n') { "\n" } else { "" };
            splices.push(Splice {
                start: at,
                end: at,
                text: format!("{newline}{indent}pool:\n{indent}  credits: {new}\n"),
            });
        }
        (None, None) => {}
    }
    Ok(splices)
}

/// Applies splices (non-overlapping) to a text.
fn apply_splices(text: &str, mut splices: Vec<Splice>) -> Result<String, EditError> {
    splices.sort_by_key(|s| (s.start, s.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for s in &splices {
        if s.start < at
            || s.end > text.len()
            || !text.is_char_boundary(s.start)
            || !text.is_char_boundary(s.end)
        {
            return Err(not_editable("the group"));
        }
        out.push_str(&text[at..s.start]);
        out.push_str(&s.text);
        at = s.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// The document's JSON with `change` applied: what the edited file must parse to.
fn expected_json(doc: &Node, change: &GroupChange) -> Value {
    expected_json_at(doc, change, "limit")
}

/// [`expected_json`] for the limit under `key` (`limit` of a group, `default` of the Workspace).
fn expected_json_at(doc: &Node, change: &GroupChange, key: &str) -> Value {
    let mut json = doc.to_json();
    let number = |c: Credits| serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(c) = change.credits {
        json[key]["credits"] = number(c);
    }
    for (kind, asked) in [("products", &change.products), ("models", &change.models)] {
        for (name, c) in asked {
            match c {
                Some(c) => json[key][kind][name] = number(*c),
                None => {
                    if let Some(caps) = json[key][kind].as_object_mut() {
                        caps.remove(name);
                    }
                }
            }
        }
        // the last cap of a kind removed: the mapping goes with it
        let emptied = json[key][kind].as_object().is_some_and(|m| m.is_empty());
        if emptied
            && asked.values().any(Option::is_none)
            && let Some(limit) = json[key].as_object_mut()
        {
            limit.remove(kind);
        }
    }
    match change.pool {
        Some(Some(c)) => {
            if json.get("pool").is_some_and(Value::is_object) {
                json["pool"]["credits"] = number(c);
            } else if let Some(obj) = json.as_object_mut() {
                obj.insert("pool".to_string(), json!({ "credits": number(c) }));
            }
        }
        Some(None) => {
            if let Some(obj) = json.as_object_mut() {
                obj.remove("pool");
            }
        }
        None => {}
    }
    json
}

/// Edits the group's file: only the changed scalars, then checks that the edited file
/// parses to exactly the old documents with those values changed.
///
/// `group` is the document as loaded from `text`; `change` should be [`effective`]
/// (asking for a value already in place rewrites it to itself). Refused, with
/// nothing half-done: a cap name [`cap_name_ok`] rejects, a removal of a cap the
/// group lacks, a value shared through an alias, a layout the splices cannot follow
/// (a multi-line flow mapping), and any edit whose result would parse differently.
pub fn edit_group(
    file: &Arc<str>,
    text: &str,
    group: &Group,
    change: &GroupChange,
) -> Result<String, EditError> {
    if let Some(name) = change.products.keys().chain(change.models.keys()).find(|n| !cap_name_ok(n)) {
        return Err(EditError::BadCapName(name.clone()));
    }
    let parse = |t: &str| parse_documents(file, t).map_err(|d| EditError::Unparsable(d.message));
    let old_docs = parse(text)?;
    let target = old_docs
        .iter()
        .position(|n| {
            n.get("kind").and_then(Node::as_str) == Some("Group")
                && n.get("name").and_then(Node::as_str) == Some(&group.name)
        })
        .ok_or_else(|| not_editable("the group"))?;
    let splices = plan_splices(text, &old_docs[target], group, change)?;
    let edited = apply_splices(text, splices)?;
    let new_docs = parse(&edited)?;
    let same = new_docs.len() == old_docs.len()
        && old_docs.iter().zip(&new_docs).enumerate().all(|(i, (old, new))| {
            let want = if i == target { expected_json(old, change) } else { old.to_json() };
            new.to_json() == want
        });
    if !same {
        return Err(not_editable("the group"));
    }
    Ok(edited)
}

/// What changes, field by field; an empty list when every asked value is already in place.
pub fn changed_fields(group: &Group, change: &GroupChange) -> Vec<Changed> {
    let mut out = Vec::new();
    if let Some(c) = change.credits.filter(|c| *c != group.limit.credits) {
        out.push(Changed {
            field: "limit.credits".into(),
            before: Some(group.limit.credits),
            after: Some(c),
        });
    }
    for (kind, caps, asked) in change.caps(group) {
        for (name, c) in asked {
            if caps.get(name).copied() != *c {
                out.push(Changed {
                    field: format!("limit.{kind}.{name}"),
                    before: caps.get(name).copied(),
                    after: *c,
                });
            }
        }
    }
    let before = group.pool.as_ref().map(|p| p.credits);
    if let Some(after) = change.pool.filter(|p| *p != before) {
        out.push(Changed { field: "pool.credits".into(), before, after });
    }
    out
}

/// The change reduced to what differs from the group as written.
pub fn effective(group: &Group, change: &GroupChange) -> GroupChange {
    GroupChange {
        credits: change.credits.filter(|c| *c != group.limit.credits),
        pool: change.pool.filter(|p| *p != group.pool.as_ref().map(|p| p.credits)),
        products: changed_caps(&group.limit.products, &change.products),
        models: changed_caps(&group.limit.models, &change.models),
    }
}

/// The asked caps whose value differs from the group's (a removal of a missing cap is no change).
fn changed_caps(
    caps: &BTreeMap<String, Credits>,
    asked: &BTreeMap<String, Option<Credits>>,
) -> BTreeMap<String, Option<Credits>> {
    asked.iter().filter(|(k, v)| caps.get(*k).copied() != **v).map(|(k, v)| (k.clone(), *v)).collect()
}

// ---------------------------------------------------------------------------
// The Workspace's default limit, an Override's expiry, a group's members

/// The document of `kind` named `name` (any name when `None`) among `docs`.
fn find_doc(docs: &[Node], kind: &str, name: Option<&str>) -> Option<usize> {
    docs.iter().position(|n| {
        n.get("kind").and_then(Node::as_str) == Some(kind)
            && name.is_none_or(|name| n.get("name").and_then(Node::as_str) == Some(name))
    })
}

/// Parses `edited` and checks it holds exactly the documents of `old_docs`, the one at
/// `target` turned into `want`: anything else and the edit is refused.
fn check_edit(
    file: &Arc<str>,
    old_docs: &[Node],
    target: usize,
    want: &Value,
    edited: String,
    what: &str,
) -> Result<String, EditError> {
    let new_docs = parse_documents(file, &edited).map_err(|d| EditError::Unparsable(d.message))?;
    let same = new_docs.len() == old_docs.len()
        && old_docs.iter().zip(&new_docs).enumerate().all(|(i, (old, new))| {
            if i == target { new.to_json() == *want } else { new.to_json() == old.to_json() }
        });
    if !same {
        return Err(not_editable(what));
    }
    Ok(edited)
}

/// Edits the Workspace's `default:` limit in place as [`edit_group`] edits a group's
/// `limit:` (credits and caps; the Workspace has no pool). `default` is the limit as
/// loaded from `text`; `change` should hold only what differs ([`effective_default`]).
pub fn edit_default(
    file: &Arc<str>,
    text: &str,
    default: &crate::model::Limit,
    change: &GroupChange,
) -> Result<String, EditError> {
    if change.pool.is_some() {
        return Err(not_editable("pool"));
    }
    if let Some(name) = change.products.keys().chain(change.models.keys()).find(|n| !cap_name_ok(n)) {
        return Err(EditError::BadCapName(name.clone()));
    }
    let old_docs = parse_documents(file, text).map_err(|d| EditError::Unparsable(d.message))?;
    let target = find_doc(&old_docs, "Workspace", None).ok_or_else(|| not_editable("the workspace"))?;
    let doc = &old_docs[target];
    let node = doc.get("default").ok_or_else(|| not_editable("default"))?;
    let mut splices = Vec::new();
    if let Some(c) = change.credits {
        splices.push(replace_scalar(text, doc, "/default/credits", "default.credits", default.credits, c)?);
    }
    for (kind, caps, asked) in
        [("products", &default.products, &change.products), ("models", &default.models, &change.models)]
    {
        if let Some(name) = asked.iter().find(|(n, c)| c.is_none() && !caps.contains_key(*n)).map(|(n, _)| n)
        {
            return Err(EditError::NoSuchCap { group: "default".into(), kind, name: name.clone() });
        }
        if !asked.is_empty() {
            splices.extend(cap_splices(text, node, kind, caps, asked)?);
        }
    }
    let edited = apply_splices(text, splices)?;
    let want = expected_json_at(doc, change, "default");
    check_edit(file, &old_docs, target, &want, edited, "the workspace")
}

/// What a change of the default limit changes, field by field (`default.credits`,
/// `default.products.codex`); empty when every asked value is already in place.
pub fn changed_default(default: &crate::model::Limit, change: &GroupChange) -> Vec<Changed> {
    let mut out = Vec::new();
    if let Some(c) = change.credits.filter(|c| *c != default.credits) {
        out.push(Changed { field: "default.credits".into(), before: Some(default.credits), after: Some(c) });
    }
    for (kind, caps, asked) in
        [("products", &default.products, &change.products), ("models", &default.models, &change.models)]
    {
        for (name, c) in asked {
            if caps.get(name).copied() != *c {
                out.push(Changed {
                    field: format!("default.{kind}.{name}"),
                    before: caps.get(name).copied(),
                    after: *c,
                });
            }
        }
    }
    out
}

/// A change of the default limit reduced to what differs from it.
pub fn effective_default(default: &crate::model::Limit, change: &GroupChange) -> GroupChange {
    GroupChange {
        credits: change.credits.filter(|c| *c != default.credits),
        pool: None,
        products: changed_caps(&default.products, &change.products),
        models: changed_caps(&default.models, &change.models),
    }
}

/// Sets the `expires:` of the Override `name` to `date`, in place (the rest of the
/// file untouched); checked by parsing the result again.
pub fn expire_override(
    file: &Arc<str>,
    text: &str,
    name: &str,
    date: NaiveDate,
) -> Result<String, EditError> {
    let old_docs = parse_documents(file, text).map_err(|d| EditError::Unparsable(d.message))?;
    let target = find_doc(&old_docs, "Override", Some(name)).ok_or_else(|| not_editable("the override"))?;
    let doc = &old_docs[target];
    let node = doc.get("expires").ok_or_else(|| not_editable("expires"))?;
    let start = node.pos.offset;
    let end = scalar_end(text, start).ok_or_else(|| not_editable("expires"))?;
    // the span must be the value as read (not an alias or a neighbour)
    if text.get(start..end).map(|t| t.trim_matches(['"', '\''])) != Some(node.scalar_text().as_str()) {
        return Err(not_editable("expires"));
    }
    let value = date.format("%Y-%m-%d").to_string();
    let edited = apply_splices(text, vec![Splice { start, end, text: value.clone() }])?;
    let mut want = doc.to_json();
    want["expires"] = Value::String(value);
    check_edit(file, &old_docs, target, &want, edited, "the override")
}

/// Adds `email` to the `members:` of the group `group` (a new last item in the list's
/// style and indentation, or a new `members:` entry after the last key when it has
/// none); checked by parsing the result again. Refused when already a member.
pub fn add_member(file: &Arc<str>, text: &str, group: &str, email: &str) -> Result<String, EditError> {
    let old_docs = parse_documents(file, text).map_err(|d| EditError::Unparsable(d.message))?;
    let target = find_doc(&old_docs, "Group", Some(group)).ok_or_else(|| not_editable("the group"))?;
    let doc = &old_docs[target];
    let item = scalar(email);
    let splice = match doc.get("members") {
        None => insert_entry(text, doc, "members", &format!("[{item}]"), "members")?,
        Some(list) => {
            let YamlValue::Seq(items) = &list.value else {
                return Err(not_editable("members"));
            };
            if items.iter().any(|i| i.as_str().is_some_and(|m| m.eq_ignore_ascii_case(email))) {
                return Err(EditError::Unparsable(format!("`{email}` is already a member of `{group}`")));
            }
            if is_flow(text, list) {
                let close = flow_close(text, list.pos.offset).ok_or_else(|| not_editable("members"))?;
                let at = text[..close].trim_end().len();
                let sep = if text[..at].ends_with('[') { "" } else { ", " };
                Splice { start: at, end: at, text: format!("{sep}{item}") }
            } else {
                let last = items.last().ok_or_else(|| not_editable("members"))?;
                let dash = text[..last.pos.offset].rfind('-').ok_or_else(|| not_editable("members"))?;
                let from = line_start(text, dash);
                if !text[from..dash].trim().is_empty() {
                    return Err(not_editable("members"));
                }
                let indent = &text[from..dash];
                let at = line_end(text, node_end(text, last).ok_or_else(|| not_editable("members"))?);
                let newline = if at > 0 && !text[..at].ends_with('\n') { "\n" } else { "" };
                Splice { start: at, end: at, text: format!("{newline}{indent}- {item}\n") }
            }
        }
    };
    let edited = apply_splices(text, vec![splice])?;
    let mut want = doc.to_json();
    match want.get_mut("members").and_then(Value::as_array_mut) {
        Some(list) => list.push(Value::String(email.to_owned())),
        None => want["members"] = json!([email]),
    }
    check_edit(file, &old_docs, target, &want, edited, "the group")
}
