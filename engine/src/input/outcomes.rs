//! Reading outcomes: what the spend produced (merged pull requests, resolved tickets).
//!
//! An outcomes file is CSV (header `time,kind,id,repo,user,team`, any order; `repo`,
//! `user` and `team` optional) or JSON Lines (one object per line with those fields).
//! Every row is one outcome, identified by its `id`: a row repeating an earlier id
//! with the same values is the same outcome (counted once), with other values it is a
//! bad row. A bad row becomes an `outcomes/bad-row` diagnostic at `file:line:col`
//! and is skipped, never dropped silently. The file is bounded ([`MAX_OUTCOMES_BYTES`],
//! [`MAX_OUTCOMES`]); users are taken in the canonical form every other input uses.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::{InputError, at, csv, extension, file_name, show};
use crate::diag::{Code, Diagnostic};

/// The largest outcomes file read, in bytes.
pub const MAX_OUTCOMES_BYTES: usize = 16 << 20;
/// Most outcomes in one file.
pub const MAX_OUTCOMES: usize = 100_000;
/// Longest `id`, `repo` or `team`, in bytes.
pub const MAX_OUTCOME_FIELD: usize = 256;
/// Longest `kind`, in bytes.
pub const MAX_OUTCOME_KIND: usize = 64;

/// One outcome: something the spend produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Outcome {
    /// When it happened (a merge, a resolution).
    pub time: DateTime<Utc>,
    /// What it is: `pull_request`, `ticket`, or any lowercase name (`[a-z][a-z0-9_]*`).
    pub kind: String,
    /// Its identity, unique in the file (`acme/api#412`, `ENG-981`).
    pub id: String,
    /// The repository it belongs to, matched against usage's `context.repo`.
    pub repo: Option<String>,
    /// Who produced it, canonical.
    pub user: Option<String>,
    /// The team (group) it is credited to; without one, the user's group.
    pub team: Option<String>,
}

/// The shape of an outcomes file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomesFormat {
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl OutcomesFormat {
    /// `.jsonl`/`.ndjson` JSON Lines, anything else CSV.
    pub fn from_path(path: &Path) -> OutcomesFormat {
        match extension(path).as_str() {
            "jsonl" | "ndjson" => OutcomesFormat::JsonLines,
            _ => OutcomesFormat::Csv,
        }
    }
}

/// Reads an outcomes file; dates without a time are midnight in `tz`. Fails only when
/// the file cannot be read or interpreted as a whole (too large, no header).
pub fn read_outcomes(path: &Path, tz: Tz) -> Result<(Vec<Outcome>, Vec<Diagnostic>), InputError> {
    let io = |source| InputError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_OUTCOMES_BYTES as u64 {
        return Err(InputError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "the file is {size} bytes, more than the {MAX_OUTCOMES_BYTES} an outcomes file may have"
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_outcomes(&file_name(path), &bytes, OutcomesFormat::from_path(path), tz)
        .map_err(|reason| InputError::Format { path: path.to_path_buf(), reason })
}

/// Parses outcomes already read; `file` names them in diagnostics.
pub fn parse_outcomes(
    file: &Arc<str>,
    bytes: &[u8],
    format: OutcomesFormat,
    tz: Tz,
) -> Result<(Vec<Outcome>, Vec<Diagnostic>), String> {
    if bytes.len() > MAX_OUTCOMES_BYTES {
        return Err(format!("more than the {MAX_OUTCOMES_BYTES} bytes an outcomes file may have"));
    }
    let mut out =
        Reader { file: file.clone(), tz, outcomes: Vec::new(), seen: HashMap::new(), findings: Vec::new() };
    match format {
        OutcomesFormat::Csv => out.csv(bytes)?,
        OutcomesFormat::JsonLines => out.jsonl(bytes)?,
    }
    Ok((out.outcomes, out.findings))
}

/// The fields of a row, by name, each with the column it starts at.
#[derive(Default)]
struct Row<'a> {
    time: Option<(Cow<'a, str>, u32)>,
    kind: Option<(Cow<'a, str>, u32)>,
    id: Option<(Cow<'a, str>, u32)>,
    repo: Option<(Cow<'a, str>, u32)>,
    user: Option<(Cow<'a, str>, u32)>,
    team: Option<(Cow<'a, str>, u32)>,
}

struct Reader {
    file: Arc<str>,
    tz: Tz,
    outcomes: Vec<Outcome>,
    /// Each id read, with the line it was first read on.
    seen: HashMap<String, (usize, u32)>,
    findings: Vec<Diagnostic>,
}

const FIELDS: [&str; 6] = ["time", "kind", "id", "repo", "user", "team"];

impl Reader {
    fn bad(&mut self, line: u32, column: u32, message: String) {
        self.findings.push(
            Diagnostic::error(Code::OutcomesBadRow, message)
                .at(at(&self.file, line, column))
                .with_help("the row is skipped; fix the file and read it again"),
        );
    }

    fn full(&mut self, line: u32) -> bool {
        if self.outcomes.len() < MAX_OUTCOMES {
            return false;
        }
        self.bad(line, 1, format!("more than {MAX_OUTCOMES} outcomes in one file; the rest is not read"));
        true
    }

    fn csv(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = csv::Reader::new(bytes);
        let mut fields: Vec<Cow<'_, [u8]>> = Vec::new();
        let header: Vec<String> = match reader.next_record(&mut fields) {
            None => return Ok(()),
            Some((_, Err(e))) => return Err(format!("header: {}", e.message())),
            Some((_, Ok(()))) => {
                fields.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase()).collect()
            }
        };
        let mut roles: Vec<Option<usize>> = Vec::with_capacity(header.len());
        for name in &header {
            let role = FIELDS.iter().position(|f| f == name);
            if role.is_some() && roles.contains(&role) {
                return Err(format!("column `{name}` appears twice in the header"));
            }
            if role.is_none() {
                return Err(format!(
                    "unknown column `{}` (outcome columns are `{}`)",
                    show(name.as_bytes()),
                    FIELDS.join(",")
                ));
            }
            roles.push(role);
        }
        for need in ["time", "kind", "id"] {
            if !header.iter().any(|h| h == need) {
                return Err(format!("the header has no `{need}` column (expected `{}`)", FIELDS.join(",")));
            }
        }
        while let Some((line, result)) = reader.next_record(&mut fields) {
            if self.full(line) {
                break;
            }
            if let Err(e) = result {
                self.bad(line, 1, e.message().to_string());
                continue;
            }
            if fields.len() != roles.len() {
                self.bad(
                    line,
                    1,
                    format!("row has {} fields, the header names {}", fields.len(), roles.len()),
                );
                continue;
            }
            let mut row = Row::default();
            let mut column = 1u32;
            let mut text_ok = true;
            for (role, f) in roles.iter().zip(&fields) {
                let Ok(text) = std::str::from_utf8(f) else {
                    self.bad(line, column, "field is not valid UTF-8".to_string());
                    text_ok = false;
                    break;
                };
                let text = text.trim();
                if !text.is_empty() {
                    let slot = match role {
                        Some(0) => &mut row.time,
                        Some(1) => &mut row.kind,
                        Some(2) => &mut row.id,
                        Some(3) => &mut row.repo,
                        Some(4) => &mut row.user,
                        _ => &mut row.team,
                    };
                    *slot = Some((Cow::Owned(text.to_string()), column));
                }
                column = column.saturating_add(u32::try_from(f.len() + 1).unwrap_or(u32::MAX));
            }
            if text_ok {
                self.row(line, row);
            }
        }
        Ok(())
    }

    fn jsonl(&mut self, bytes: &[u8]) -> Result<(), String> {
        for (index, raw) in bytes.split(|&c| c == b'\n').enumerate() {
            let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.full(line) {
                break;
            }
            let value: serde_json::Value = match serde_json::from_slice(raw) {
                Ok(v) => v,
                Err(e) => {
                    self.bad(line, u32::try_from(e.column()).unwrap_or(1), format!("not JSON: {e}"));
                    continue;
                }
            };
            let Some(obj) = value.as_object() else {
                self.bad(line, 1, "expected a JSON object".to_string());
                continue;
            };
            if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                let key = show(key.as_bytes());
                self.bad(
                    line,
                    1,
                    format!("unknown field `{key}` (outcome fields are {})", FIELDS.join(", ")),
                );
                continue;
            }
            let mut row = Row::default();
            let mut bad = None;
            for (k, name) in FIELDS.iter().enumerate() {
                let text = match obj.get(*name) {
                    None | Some(serde_json::Value::Null) => continue,
                    Some(serde_json::Value::String(s)) => s.trim().to_string(),
                    Some(serde_json::Value::Number(n)) if *name != "time" => n.to_string(),
                    Some(serde_json::Value::Number(n)) => {
                        match n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)) {
                            Some(t) => t.to_rfc3339(),
                            None => {
                                bad = Some(format!("`time` {n} is not a unix timestamp"));
                                break;
                            }
                        }
                    }
                    Some(_) => {
                        bad = Some(format!("`{name}` must be a string"));
                        break;
                    }
                };
                if text.is_empty() {
                    continue;
                }
                let slot = match k {
                    0 => &mut row.time,
                    1 => &mut row.kind,
                    2 => &mut row.id,
                    3 => &mut row.repo,
                    4 => &mut row.user,
                    _ => &mut row.team,
                };
                *slot = Some((Cow::Owned(text), 1));
            }
            match bad {
                Some(msg) => self.bad(line, 1, msg),
                None => self.row(line, row),
            }
        }
        Ok(())
    }

    /// Checks one row's fields and keeps the outcome, or reports why not.
    fn row(&mut self, line: u32, row: Row<'_>) {
        match self.outcome(row) {
            Ok(outcome) => match self.seen.get(&outcome.id) {
                Some(&(k, _)) if self.outcomes.get(k) == Some(&outcome) => {}
                Some(&(_, first)) => {
                    let id = show(outcome.id.as_bytes());
                    self.bad(line, 1, format!("outcome `{id}` is given at line {first} with other values"));
                }
                None => {
                    self.seen.insert(outcome.id.clone(), (self.outcomes.len(), line));
                    self.outcomes.push(outcome);
                }
            },
            Err((column, message)) => self.bad(line, column, message),
        }
    }

    fn outcome(&self, row: Row<'_>) -> Result<Outcome, (u32, String)> {
        let Some((time, time_col)) = row.time else { return Err((1, "row has no `time`".to_string())) };
        let Some((kind, kind_col)) = row.kind else { return Err((1, "row has no `kind`".to_string())) };
        let Some((id, id_col)) = row.id else { return Err((1, "row has no `id`".to_string())) };
        let time = parse_time(&time, self.tz).ok_or_else(|| {
            (
                time_col,
                format!("`time` `{}` is not an RFC 3339 instant or a YYYY-MM-DD date", show(time.as_bytes())),
            )
        })?;
        let kind_ok = kind.len() <= MAX_OUTCOME_KIND
            && kind.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !kind_ok {
            return Err((
                kind_col,
                format!(
                    "`kind` `{}` must be a lowercase name (`pull_request`, `ticket`; letters, digits, `_`, at most {MAX_OUTCOME_KIND})",
                    show(kind.as_bytes())
                ),
            ));
        }
        let id = text_field("id", &id, id_col)?;
        let repo = row.repo.map(|(r, c)| text_field("repo", &r, c)).transpose()?;
        let team = row.team.map(|(t, c)| text_field("team", &t, c)).transpose()?;
        let user = match row.user {
            None => None,
            Some((u, c)) => Some(
                crate::identity::canonical_email(&u).map_err(|e| (c, format!("`user`: {e}")))?.into_owned(),
            ),
        };
        Ok(Outcome { time, kind: kind.into_owned(), id, repo, user, team })
    }
}

/// A free-text field: bounded, without control characters.
fn text_field(name: &str, text: &str, column: u32) -> Result<String, (u32, String)> {
    if text.len() > MAX_OUTCOME_FIELD {
        return Err((column, format!("`{name}` is longer than {MAX_OUTCOME_FIELD} bytes")));
    }
    if let Some(ch) = text.chars().find(|c| c.is_control()) {
        return Err((column, format!("`{name}` holds a control character, U+{:04X}", u32::from(ch))));
    }
    Ok(text.to_string())
}

/// RFC 3339, or a date taken as its midnight in `tz`.
fn parse_time(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).earliest().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, format: OutcomesFormat) -> (Vec<Outcome>, Vec<(u32, u32, String)>) {
        let (o, d) = parse_outcomes(&Arc::from("o.csv"), text.as_bytes(), format, chrono_tz::UTC).unwrap();
        let d = d
            .iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                (l.line, l.column, d.message.clone())
            })
            .collect();
        (o, d)
    }

    #[test]
    fn csv_rows_are_read_and_bad_rows_reported_where_they_are() {
        let (o, d) = parse(
            "time,kind,id,repo,user,team\n\
             2026-11-03T10:00:00Z,pull_request,acme/api#1,acme/api,Alice@Acme.com,platform\n\
             2026-11-04,ticket,ENG-1,,,\n\
             nope,ticket,ENG-2,,,\n\
             2026-11-04,Ticket,ENG-3,,,\n\
             2026-11-04,ticket,ENG-4,,not an email,\n\
             2026-11-04,ticket,ENG-1,,,\n\
             2026-11-05,ticket,ENG-1,,,\n\
             2026-11-04,ticket\n",
            OutcomesFormat::Csv,
        );
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].user.as_deref(), Some("alice@acme.com"));
        assert_eq!(o[0].repo.as_deref(), Some("acme/api"));
        assert_eq!(o[1].repo, None);
        assert_eq!(o[1].time.to_rfc3339(), "2026-11-04T00:00:00+00:00");
        let at: Vec<(u32, u32)> = d.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, vec![(4, 1), (5, 12), (6, 26), (8, 1), (9, 1)], "{d:?}");
        assert!(d[4].2.contains("2 fields"), "{d:?}");
        assert!(d[3].2.contains("line 3 with other values"), "{d:?}");
    }

    #[test]
    fn json_lines_are_read_and_unknown_fields_refused() {
        let (o, d) = parse(
            "{\"time\":\"2026-11-03T10:00:00Z\",\"kind\":\"pull_request\",\"id\":\"a#1\",\"repo\":\"acme/api\"}\n\
             \n\
             {\"time\":1700000000,\"kind\":\"ticket\",\"id\":7}\n\
             {\"time\":\"2026-11-03\",\"kind\":\"ticket\",\"id\":\"x\",\"colour\":\"red\"}\n\
             [1]\n",
            OutcomesFormat::JsonLines,
        );
        assert_eq!(o.len(), 2);
        assert_eq!(o[1].id, "7");
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4, 5], "{d:?}");
    }

    #[test]
    fn a_header_without_the_needed_columns_is_refused() {
        let e = parse_outcomes(&Arc::from("o.csv"), b"time,kind\n", OutcomesFormat::Csv, chrono_tz::UTC)
            .unwrap_err();
        assert!(e.contains("`id`"), "{e}");
        let e = parse_outcomes(
            &Arc::from("o.csv"),
            b"time,kind,id,colour\n",
            OutcomesFormat::Csv,
            chrono_tz::UTC,
        )
        .unwrap_err();
        assert!(e.contains("unknown column `colour`"), "{e}");
    }
}
