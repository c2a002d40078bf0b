//! YAML with a span on every node.
//!
//! `serde-saphyr` does the parsing and enforces the input budgets (nesting depth,
//! alias expansion, event count) and rejects duplicate keys. We deserialize into
//! a small spanned tree so that every later stage — JSON Schema, semantics, CEL —
//! can point at the exact line and column of the node it complains about.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Code, Diagnostic, Location};

/// Maximum nesting depth of a policy document. Real policies nest four levels.
pub const MAX_DEPTH: usize = 64;
/// Maximum alias references in one file.
pub const MAX_ALIASES: usize = 1_000;
/// Maximum parser events in one file (bounds time and memory of alias bombs).
pub const MAX_EVENTS: usize = 2_000_000;
/// Maximum events replayed by expanding aliases in one file. An alias bomb is
/// stopped here long before [`MAX_EVENTS`], in a fraction of a second; an anchor
/// shared by real policies (a list of owners, a limit) expands to a few hundred.
pub const MAX_REPLAYED_EVENTS: usize = 10_000;

/// Where a node starts in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// Byte offset in the file.
    pub offset: usize,
    /// Byte length of the node's text (0 when unknown).
    pub len: usize,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub value: Value,
}

/// The value of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 only: `NO` is a string).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integer number (or an integer too large for `i64`).
    Float(f64),
    /// A number written as a plain JSON-style decimal (`12.5`, `9007199254.740993`,
    /// `1e3`), kept as its exact text: an `f64` would round amounts with more than
    /// 15 significant digits, and credits are exact.
    Decimal(Box<str>),
    /// Text.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The mapping entry with this key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node of the mapping entry with this key.
    pub fn key(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(k, _)| k),
            _ => None,
        }
    }

    /// The text of a string node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Follows a JSON pointer (`/limit/credits`, `/members/0`) to a node.
    pub fn pointer(&self, pointer: &str) -> Option<&Node> {
        let mut node = self;
        for raw in pointer.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            node = match &node.value {
                Value::Map(_) => node.get(&token)?,
                Value::Seq(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The deepest node along a JSON pointer that exists (for errors about missing children).
    pub fn nearest(&self, pointer: &str) -> &Node {
        let mut node = self;
        for raw in pointer.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            let next = match &node.value {
                Value::Map(_) => node.get(&token),
                Value::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Converts to JSON for schema validation and typed deserialization.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            // serde_json keeps a number's exact text (`arbitrary_precision`).
            Value::Decimal(text) => text
                .parse::<serde_json::Number>()
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => serde_json::Value::Object(
                entries.iter().map(|(k, v)| (k.scalar_text(), v.to_json())).collect(),
            ),
        }
    }

    /// Moves the node and its children down by `lines` lines and `bytes` bytes.
    fn shift(&mut self, lines: u32, bytes: usize) {
        self.pos.line = self.pos.line.saturating_add(lines);
        self.pos.offset += bytes;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.shift(lines, bytes)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.shift(lines, bytes);
                v.shift(lines, bytes);
            }),
            _ => {}
        }
    }

    /// A scalar as text (map keys that are not strings become their text).
    pub fn scalar_text(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Decimal(text) => text.to_string(),
            Value::String(s) => s.clone(),
            Value::Seq(_) => "[…]".into(),
            Value::Map(_) => "{…}".into(),
        }
    }

    /// A short name of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) | Value::Decimal(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        let loc = spanned.referenced;
        let span = loc.span();
        Ok(Node {
            pos: Pos {
                line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
                column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
                offset: span.byte_offset().and_then(|o| usize::try_from(o).ok()).unwrap_or(0),
                len: span.byte_len().and_then(|o| usize::try_from(o).ok()).unwrap_or(0),
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::String(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<Node, Node>()? {
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// The parser options every policy file is read with.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // YAML 1.1 booleans (`country: NO`) must stay strings.
        strict_booleans: true,
        // `cost_center: 010` is an identifier, not the number 8 or 10.
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
        },
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: MAX_ALIASES,
            max_events: MAX_EVENTS,
        },
    }
}

/// Parses every document of a YAML file. Empty documents are skipped.
pub fn parse_documents(file: &Arc<str>, text: &str) -> Result<Vec<Node>, Diagnostic> {
    if let Some(d) = control_character(file, text) {
        return Err(d);
    }
    // Each document is parsed on its own: the parser's budgets then apply per
    // document, and its cost stays linear in the number of documents (parsing a
    // whole multi-document stream at once re-counts earlier documents).
    let mut nodes = Vec::new();
    for chunk in document_chunks(text) {
        let parsed = serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(chunk.text, options());
        match parsed {
            Ok(found) => nodes.extend(found.into_iter().map(|mut n| {
                keep_decimal_text(&mut n, chunk.text);
                n.shift(chunk.line, chunk.offset);
                n
            })),
            Err(e) => {
                let mut d = yaml_error(file, chunk.text, &e);
                if let Some(l) = d.location.as_mut() {
                    l.line = l.line.saturating_add(chunk.line);
                    l.offset += chunk.offset;
                }
                return Err(d);
            }
        }
    }
    Ok(nodes)
}

/// Replaces each float written as a plain decimal with its exact text, read from the
/// document at the node's span. A float reached through an alias (its span is the
/// alias) or written another way (`.5`, `+1.5`, `.inf`) stays a float.
fn keep_decimal_text(node: &mut Node, text: &str) {
    match &mut node.value {
        Value::Float(_) => {
            let literal =
                node.pos.offset.checked_add(node.pos.len).and_then(|end| text.get(node.pos.offset..end));
            if let Some(literal) = literal.map(str::trim).filter(|l| is_plain_decimal(l)) {
                node.value = Value::Decimal(literal.into());
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| keep_decimal_text(n, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            keep_decimal_text(k, text);
            keep_decimal_text(v, text);
        }),
        _ => {}
    }
}

/// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_plain_decimal(text: &str) -> bool {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    if int == 0 || (int > 1 && b[0] == b'0') {
        return false;
    }
    let mut i = int;
    if b.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// A part of a file holding one document (or a leading part with none).
struct Chunk<'a> {
    text: &'a str,
    /// Lines before the chunk.
    line: u32,
    /// Bytes before the chunk.
    offset: usize,
}

/// Splits a YAML stream before each `---` marker line. YAML forbids `---` at the start
/// of a line inside any scalar, so such a line always starts a new document; a marker
/// preceded by a directive (`%YAML`) stays with it.
fn document_chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line) = (0usize, 0u32);
    let (mut offset, mut line) = (0usize, 0u32);
    let mut after_directive = false;
    for raw in text.split_inclusive('\n') {
        let is_marker = raw.starts_with("---")
            && raw[3..].chars().next().is_none_or(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        if is_marker && offset > start && !after_directive {
            chunks.push(Chunk { text: &text[start..offset], line: start_line, offset: start });
            start = offset;
            start_line = line;
        }
        let trimmed = raw.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            after_directive = raw.starts_with('%');
        }
        offset += raw.len();
        line += 1;
    }
    chunks.push(Chunk { text: &text[start..], line: start_line, offset: start });
    chunks
}

/// `text` as a YAML double-quoted scalar: the one way the product writes user text into YAML.
///
/// Besides `\` and `"`, every control character and every character a YAML reader
/// may take for a line break (U+0085, U+2028, U+2029) or a byte-order mark (U+FEFF)
/// is escaped as `\uXXXX`: written raw, they would end the line for some readers
/// and not others, and a reason could then smuggle a key into the document.
pub fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A character YAML does not allow in a file (NUL, escape, …): the file is binary, not text.
///
/// A carriage return not followed by `\n` is refused too: YAML counts it as a line
/// break, every other reader of the file (editors, CI annotations, the locations of
/// findings) does not, so a finding after it would point at the wrong line.
fn control_character(file: &Arc<str>, text: &str) -> Option<Diagnostic> {
    let bytes = text.as_bytes();
    let (offset, c) = text.char_indices().find(|&(i, c)| match c {
        '\r' => bytes.get(i + 1) != Some(&b'\n'),
        _ => c.is_control() && !matches!(c, '\t' | '\n' | '\u{85}'),
    })?;
    let before = &text[..offset];
    let line = u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX);
    let column =
        u32::try_from(before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1).unwrap_or(u32::MAX);
    let at = Location { file: file.clone(), line, column, offset, len: c.len_utf8(), commit: None };
    if c == '\r' {
        return Some(
            Diagnostic::error(Code::InputNotText, "file has a carriage return that does not end a line")
                .at(at)
                .with_label("U+000D without `\\n`")
                .with_help("save the file with `\\n` or `\\r\\n` line endings"),
        );
    }
    Some(
        Diagnostic::error(
            Code::InputNotText,
            format!("file holds the control character U+{:04X}", u32::from(c)),
        )
        .at(at)
        .with_label("not text")
        .with_help("policy files are YAML text; is this a binary file?"),
    )
}

/// Turns a parser error into a diagnostic at its position, in our words.
fn yaml_error(file: &Arc<str>, text: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let raw = error.without_snippet().to_string();
    let raw = first_line(&raw);
    let lower = raw.to_lowercase();
    const LIMIT_HELP: &str = "policy files are plain data: keep nesting shallow and avoid expanding aliases";
    let limit = |message: String| Diagnostic::error(Code::YamlLimit, message).with_help(LIMIT_HELP);
    let diagnostic = if lower.contains("duplicate") {
        let key = raw
            .split_once("key:")
            .map(|(_, rest)| rest.split(',').next().unwrap_or(rest).trim().trim_matches(['"', '\'']))
            .unwrap_or("");
        let message =
            if key.is_empty() { "duplicate key".to_string() } else { format!("duplicate key `{key}`") };
        Diagnostic::error(Code::YamlDuplicateKey, message)
            .with_help("each key may appear once in a mapping: remove or rename one of them")
    } else if lower.contains("replay") {
        limit(format!("aliases expand to more than {MAX_REPLAYED_EVENTS} values"))
    } else if lower.contains("alias") || lower.contains("anchor") {
        limit(format!("more than {MAX_ALIASES} aliases or anchors"))
    } else if lower.contains("depth") || lower.contains("recursion") || lower.contains("nesting") {
        limit(format!("nesting deeper than {MAX_DEPTH} levels"))
    } else if matches!(error, serde_saphyr::Error::Budget { .. }) || lower.contains("budget") {
        limit(format!("file is too complex: more than {MAX_EVENTS} values"))
    } else {
        let help = if lower.contains("tab") {
            "indent with spaces: YAML does not allow tabs in indentation"
        } else {
            "check the indentation here and on the lines above, and that every `[`, `{` and quote is closed"
        };
        Diagnostic::error(Code::YamlSyntax, lowercase_first(&backticks(raw))).with_help(help)
    };
    let mut location = Location::file_start(file.clone());
    if let Some(loc) = error.location().filter(|l| l.line() > 0) {
        location.line = u32::try_from(loc.line()).unwrap_or(u32::MAX);
        location.column = u32::try_from(loc.column()).unwrap_or(1).max(1);
        location.offset = loc
            .span()
            .byte_offset()
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or_else(|| offset_of(text, location.line, location.column));
    }
    let first =
        (diagnostic.code == Code::YamlDuplicateKey).then(|| first_key(file, text, &location)).flatten();
    let mut diagnostic = diagnostic.at(location);
    if let Some(first) = first {
        diagnostic = diagnostic.with_secondary(first, "first written here");
    }
    diagnostic
}

/// Where the key repeated at `second` was first written: the closest line above
/// at the same indentation with the same key.
fn first_key(file: &Arc<str>, text: &str, second: &Location) -> Option<Location> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let line = lines.get((second.line as usize).checked_sub(1)?)?;
    let indent = (second.column as usize).saturating_sub(1);
    let key = line.get(indent..)?.split(':').next()?.trim_end();
    if key.is_empty() {
        return None;
    }
    let index = (0..second.line as usize - 1).rev().find(|&i| {
        let l = lines[i];
        let lead = l.len() - l.trim_start_matches(' ').len();
        lead == indent && l[lead..].strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':'))
    })?;
    let offset: usize = lines[..index].iter().map(|l| l.len()).sum::<usize>() + indent;
    Some(Location {
        file: file.clone(),
        line: u32::try_from(index + 1).ok()?,
        column: second.column,
        offset,
        len: key.len(),
        commit: None,
    })
}

/// Puts short quoted tokens of a parser message in backticks: `':'` → `` `:` ``.
fn backticks(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('\'') {
        let after = &rest[start + 1..];
        match after.find('\'') {
            Some(end) if end > 0 && end <= 12 && !after[..end].contains(' ') => {
                out.push_str(&rest[..start]);
                out.push('`');
                out.push_str(&after[..end]);
                out.push('`');
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first line of a parser message, without the position it repeats.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or(message).trim();
    match line.rfind(" at line ") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Lowercases the first letter, as every diagnostic message starts lowercase.
pub(crate) fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Byte offset of a 1-based line and column.
pub fn offset_of(text: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let col_bytes: usize =
                l.chars().take(column.saturating_sub(1) as usize).map(char::len_utf8).sum();
            return offset + col_bytes;
        }
        offset += l.len();
    }
    offset.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Node>, Diagnostic> {
        parse_documents(&Arc::from("t.yaml"), text)
    }

    #[test]
    fn every_node_has_a_position() {
        let docs = parse("a: 1\nb:\n  c: [x, NO]\n---\nd: 0.1\n").unwrap();
        assert_eq!(docs.len(), 2);
        let c = docs[0].pointer("/b/c/1").unwrap();
        assert_eq!(c.value, Value::String("NO".into()));
        assert_eq!((c.pos.line, c.pos.column), (3, 10));
        assert_eq!(docs[1].get("d").unwrap().value, Value::Decimal("0.1".into()));
        assert_eq!(docs[1].get("d").unwrap().pos.line, 5);
    }

    #[test]
    fn many_documents_parse_in_linear_time_with_exact_positions() {
        let doc = "kind: Override\nname: x\nadd: { credits: 5 }\n";
        let text: String = (0..3000).map(|_| format!("---\n{doc}")).collect();
        let docs = parse(&text).unwrap();
        assert_eq!(docs.len(), 3000);
        let last = docs[2999].get("add").unwrap().get("credits").unwrap();
        assert_eq!((last.pos.line, last.pos.column), (2999 * 4 + 4, 17));
        assert_eq!(&text[last.pos.offset..last.pos.offset + 1], "5");
    }

    #[test]
    fn errors_in_later_documents_point_at_their_line() {
        let d = parse("a: 1\n---\nb: 2\n---\nc: [1\n").unwrap_err();
        assert_eq!(d.code, Code::YamlSyntax);
        assert!(d.location.unwrap().line >= 5);
        let docs = parse("%YAML 1.2\n---\na: 1\n...\n---\nb: --- not a marker\n").unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn leading_zeros_stay_text() {
        let docs = parse("cc: 010\n").unwrap();
        assert_eq!(docs[0].get("cc").unwrap().value, Value::String("010".into()));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let d = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(d.code, Code::YamlDuplicateKey);
        assert_eq!(d.location.unwrap().line, 2);
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let d = parse(&text).unwrap_err();
        assert_eq!(d.code, Code::YamlLimit, "{d:?}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let d = parse(&text).unwrap_err();
        assert_eq!(d.code, Code::YamlLimit, "{d:?}");
        // Block nesting recurses in the scanner before the depth budget stops it:
        // callers parse on a thread with a large stack (see `crate::stack`).
        let text: String = (0..10_000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let d = crate::stack::with_large_stack(move || parse(&text)).unwrap().unwrap_err();
        assert_eq!(d.code, Code::YamlLimit, "{d:?}");
    }

    #[test]
    fn duplicate_keys_show_both_places() {
        let d = parse("limit:\n  credits: 1\n  models: {}\n  credits: 2\n").unwrap_err();
        assert_eq!(d.message, "duplicate key `credits`");
        assert_eq!(d.location.unwrap().line, 4);
        assert_eq!(d.labels[0].location.line, 2);
        assert_eq!(d.labels[0].location.column, 3);
    }

    #[test]
    fn control_characters_mean_a_binary_file() {
        let d = parse("a: 1\nb: x\u{0}y\n").unwrap_err();
        assert_eq!(d.code, Code::InputNotText);
        let l = d.location.unwrap();
        assert_eq!((l.line, l.column, l.offset), (2, 5, 9));
        assert!(parse("a: \"tab\there\"\r\n").is_ok());
    }

    #[test]
    fn a_bare_carriage_return_is_refused_where_it_is() {
        // YAML breaks lines at a bare `\r`; the finding's line and column would
        // then disagree with the file as everything else counts its lines.
        let d = parse("a: 1\nb: 'x\ry'\nc: [\n").unwrap_err();
        assert_eq!(d.code, Code::InputNotText);
        let l = d.location.unwrap();
        assert_eq!((l.line, l.column, l.offset, l.len), (2, 6, 10, 1));
        assert!(parse("a: 1\r\nb: 2\r\n").is_ok());
    }

    #[test]
    fn parser_quotes_become_backticks() {
        assert_eq!(backticks("illegal placement of ':' indicator"), "illegal placement of `:` indicator");
        assert_eq!(backticks("it's fine, isn't it"), "it's fine, isn't it");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let d = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert_eq!(d.code, Code::YamlSyntax);
        assert!(d.location.unwrap().line >= 1);
    }
}
