//! A byte-level CSV record reader (RFC 4180) that keeps line numbers.
//!
//! Used for directories and for the quoted fallback of the usage fast path. Quoted
//! fields may hold commas, doubled quotes and newlines; records are reported with
//! the line they start on so diagnostics can point at them.

use std::borrow::Cow;

/// Why a record could not be split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CsvError {
    /// A quoted field never closed.
    UnterminatedQuote,
    /// Something other than a comma or the end of the line after a closing quote.
    AfterQuote,
}

impl CsvError {
    /// A lowercase message.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            CsvError::UnterminatedQuote => "a quoted field is never closed",
            CsvError::AfterQuote => "unexpected text after a closing quote",
        }
    }
}

/// Reads records one after the other from a byte buffer.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes` (line 1); a UTF-8 byte-order mark is skipped.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let pos = if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        Reader { bytes, pos, line: 1 }
    }

    /// A reader starting at byte `pos`, which is at the start of line `line`.
    pub(crate) fn at(bytes: &'a [u8], pos: usize, line: u32) -> Self {
        Reader { bytes, pos, line }
    }

    /// The byte offset of the next record.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The line the next record starts on.
    pub(crate) fn line(&self) -> u32 {
        self.line
    }

    /// Reads the next non-blank record into `fields`; returns its line, or `None` at the end.
    /// On a malformed record the rest of its line is skipped and the error returned with the line.
    pub(crate) fn next_record(
        &mut self,
        fields: &mut Vec<Cow<'a, [u8]>>,
    ) -> Option<(u32, Result<(), CsvError>)> {
        fields.clear();
        // Skip blank lines (a trailing newline, an empty line between records).
        loop {
            match self.bytes.get(self.pos) {
                None => return None,
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'\r') if self.bytes.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                Some(_) => break,
            }
        }
        let line = self.line;
        let start = self.pos;
        loop {
            match self.field(fields) {
                Ok(true) => continue,
                Ok(false) => return Some((line, Ok(()))),
                Err(e) => {
                    if self.line != line || e == CsvError::UnterminatedQuote {
                        // A stray quote would swallow the following lines (or the rest of
                        // the file): a bad record costs only the line it starts on.
                        self.pos = start;
                        self.line = line;
                    }
                    self.skip_line();
                    return Some((line, Err(e)));
                }
            }
        }
    }

    /// Reads one field; true when a comma follows (more fields in this record).
    fn field(&mut self, fields: &mut Vec<Cow<'a, [u8]>>) -> Result<bool, CsvError> {
        let bytes = self.bytes;
        if bytes.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            let mut value: Vec<u8> = Vec::new();
            loop {
                let Some(&b) = bytes.get(self.pos) else {
                    return Err(CsvError::UnterminatedQuote);
                };
                self.pos += 1;
                match b {
                    b'"' if bytes.get(self.pos) == Some(&b'"') => {
                        value.push(b'"');
                        self.pos += 1;
                    }
                    b'"' => break,
                    b'\n' => {
                        self.line += 1;
                        value.push(b);
                    }
                    _ => value.push(b),
                }
            }
            fields.push(Cow::Owned(value));
            self.after_field()
        } else {
            let start = self.pos;
            let end = memchr::memchr3(b',', b'\n', b'"', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            if bytes.get(end) == Some(&b'"') {
                return Err(CsvError::AfterQuote);
            }
            let mut value_end = end;
            if bytes.get(end) != Some(&b',') && value_end > start && bytes[value_end - 1] == b'\r' {
                value_end -= 1;
            }
            fields.push(Cow::Borrowed(&bytes[start..value_end]));
            self.pos = end;
            self.after_field()
        }
    }

    /// Consumes the separator after a field.
    fn after_field(&mut self) -> Result<bool, CsvError> {
        match self.bytes.get(self.pos) {
            None => Ok(false),
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
                Ok(false)
            }
            Some(b'\r') if matches!(self.bytes.get(self.pos + 1), Some(b'\n') | None) => {
                self.pos += 1;
                self.after_field()
            }
            Some(_) => Err(CsvError::AfterQuote),
        }
    }

    /// Skips to the start of the next line.
    fn skip_line(&mut self) {
        match memchr::memchr(b'\n', &self.bytes[self.pos.min(self.bytes.len())..]) {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.bytes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(u32, Result<Vec<String>, CsvError>)> {
        let mut reader = Reader::new(text.as_bytes());
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while let Some((line, r)) = reader.next_record(&mut fields) {
            out.push((
                line,
                r.map(|()| fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()),
            ));
        }
        out
    }

    #[test]
    fn splits_plain_and_quoted_fields_with_lines() {
        let got = all("a,b,c\r\n\n\"x,1\",\"say \"\"hi\"\"\",\n\"multi\nline\",2,3\n");
        assert_eq!(
            got,
            vec![
                (1, Ok(vec!["a".into(), "b".into(), "c".into()])),
                (3, Ok(vec!["x,1".into(), "say \"hi\"".into(), String::new()])),
                (4, Ok(vec!["multi\nline".into(), "2".into(), "3".into()])),
            ]
        );
    }

    #[test]
    fn reports_broken_quotes_and_resumes() {
        let got = all("\"open,1\nok,2\n");
        assert_eq!(got[0], (1, Err(CsvError::UnterminatedQuote)));
        assert_eq!(got[1], (2, Ok(vec!["ok".into(), "2".into()])));
        let got = all("\"a\"b,1\nok,2");
        assert_eq!(got[0], (1, Err(CsvError::AfterQuote)));
        assert_eq!(got[1], (2, Ok(vec!["ok".into(), "2".into()])));
    }
}
