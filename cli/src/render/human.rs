//! Human output: rustc-style diagnostics with the source line, a caret under the
//! span, labels and `help`, then one summary line.
//!
//! Layout is annotate-snippets' job; this module only maps a [`Diagnostic`] onto
//! it: the primary span and the labels in the same file share one snippet, labels
//! in other files get a snippet each, and a finding with no place (an empty
//! repository) is a title alone.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use annotate_snippets::{Annotation, AnnotationKind, Element, Group, Level, Origin, Renderer, Snippet};
use budgit_engine::diag::Label;
use budgit_engine::load::PolicySet;
use budgit_engine::{Diagnostic, Location, Report, Severity};

use super::{DiagContext, plural};

/// Renders every finding, then the summary line.
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    let renderer = if context.color { Renderer::styled() } else { Renderer::plain() };
    let mut files = Files::new(context.policies);
    let mut out = String::new();
    for diagnostic in &report.diagnostics {
        out.push_str(&renderer.render(&[group(context, &mut files, diagnostic)]));
        out.push_str("\n\n");
    }
    out.push_str(&renderer.render(&[summary(context, report)]));
    out.push('\n');
    out
}

/// `error: 3 errors, 1 warning`, or `ok: 12 files, 40 documents, no findings`.
fn summary<'a>(context: &DiagContext<'_>, report: &Report) -> Group<'a> {
    let (errors, warnings) = (report.errors(), report.warnings());
    if errors > 0 {
        let mut text = plural(errors, "error");
        if warnings > 0 {
            text = format!("{text}, {}", plural(warnings, "warning"));
        }
        return Group::with_title(Level::ERROR.primary_title(text));
    }
    let findings = if warnings > 0 { plural(warnings, "warning") } else { "no findings".to_owned() };
    let text = format!(
        "{}, {}, {findings}",
        plural(context.policies.sources.len(), "file"),
        plural(context.policies.len(), "document")
    );
    Group::with_title(Level::NOTE.with_name("ok").primary_title(text))
}

/// One finding as an annotate-snippets group.
fn group<'a>(context: &DiagContext<'a>, files: &mut Files<'a>, d: &'a Diagnostic) -> Group<'a> {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()).id(d.code.as_str()));
    let mut labels: Vec<&Label> = d.labels.iter().collect();
    if let Some(location) = &d.location {
        let same_file = take_same_file(&mut labels, location);
        let primary = Mark { location, label: d.label.as_deref(), kind: AnnotationKind::Primary };
        let marks = std::iter::once(primary).chain(same_file.iter().map(|l| Mark::context(l)));
        match files.get(location) {
            Some(text) => group = group.element(snippet(text, context.path(location), marks)),
            None => {
                // Without the text there is nowhere to draw the labels: say them in words.
                group = group.element(origin(context, location));
                group = group.elements(d.label.as_deref().map(|l| Level::NOTE.message(l)));
                group = group.elements(same_file.iter().map(|l| label_note(context, l)));
            }
        }
    }
    while let Some(first) = labels.first().copied() {
        let same_file = take_same_file(&mut labels, &first.location);
        match files.get(&first.location) {
            Some(text) => {
                let marks = same_file.iter().map(|l| Mark::context(l));
                group = group.element(snippet(text, context.path(&first.location), marks));
            }
            None => group = group.elements(same_file.iter().map(|l| label_note(context, l))),
        }
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    group
}

/// Removes and returns the labels in the same file (and commit) as `location`.
fn take_same_file<'l>(labels: &mut Vec<&'l Label>, location: &Location) -> Vec<&'l Label> {
    let (same, rest): (Vec<&Label>, Vec<&Label>) =
        labels.iter().partition(|l| l.location.file == location.file && l.location.commit == location.commit);
    *labels = rest;
    same
}

/// A span to draw in a snippet.
struct Mark<'a, 'l> {
    location: &'l Location,
    label: Option<&'a str>,
    kind: AnnotationKind,
}

impl<'a> Mark<'a, 'a> {
    fn context(label: &'a Label) -> Self {
        Mark { location: &label.location, label: Some(&label.message), kind: AnnotationKind::Context }
    }
}

/// A snippet of one file showing only the lines the marks are on (and those between),
/// so rendering costs the size of the finding, not of the file.
fn snippet<'a, 'l>(
    text: Text<'a, '_>,
    path: String,
    marks: impl Iterator<Item = Mark<'a, 'l>>,
) -> Element<'a> {
    let marks: Vec<(Range<usize>, Option<&'a str>, AnnotationKind)> =
        marks.map(|m| (text.span(m.location), m.label, m.kind)).collect();
    let first = marks.iter().map(|(r, ..)| text.line_of(r.start)).min().unwrap_or(0);
    let last =
        marks.iter().map(|(r, ..)| text.line_of(r.end.saturating_sub(1).max(r.start))).max().unwrap_or(0);
    let window = text.line_start(first)..text.line_start(last + 1);
    let annotations = marks.into_iter().map(|(r, label, kind)| -> Annotation<'a> {
        let annotation = kind.span(r.start - window.start..r.end - window.start);
        match label {
            Some(label) => annotation.label(label),
            None => annotation,
        }
    });
    Snippet::source(&text.text[window.clone()])
        .line_start(first + 1)
        .path(path)
        .annotations(annotations.collect::<Vec<_>>())
        .into()
}

fn label_note<'a>(context: &DiagContext<'_>, label: &Label) -> annotate_snippets::Message<'a> {
    let l = &label.location;
    Level::NOTE.message(format!("{}:{}:{}: {}", context.path(l), l.line, l.column, label.message))
}

fn origin<'a>(context: &DiagContext<'_>, location: &Location) -> Origin<'a> {
    Origin::path(context.path(location)).line(location.line as usize).char_column(location.column as usize)
}

type FileKey = (Arc<str>, Option<Arc<str>>);

/// The policy files' texts, with each file's line starts computed the first time a
/// finding points into it.
pub(super) struct Files<'a> {
    texts: HashMap<FileKey, &'a str>,
    starts: HashMap<FileKey, Vec<usize>>,
}

impl<'a> Files<'a> {
    pub(super) fn new(policies: &'a PolicySet) -> Self {
        let texts = policies.sources.iter().map(|s| ((s.path.clone(), s.commit.clone()), &*s.text)).collect();
        Files { texts, starts: HashMap::new() }
    }

    /// The text a location points into, when it was read.
    pub(super) fn get(&mut self, location: &Location) -> Option<Text<'a, '_>> {
        let key = (location.file.clone(), location.commit.clone());
        let text = *self.texts.get(&key)?;
        let starts = self.starts.entry(key).or_insert_with(|| {
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
        });
        Some(Text { text, starts })
    }
}

/// A file's text and where its lines start.
#[derive(Clone, Copy)]
pub(super) struct Text<'a, 's> {
    text: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    starts: &'s [usize],
}

impl Text<'_, '_> {
    /// The 0-based line holding a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).saturating_sub(1)
    }

    /// Where a 0-based line starts; the end of the text past the last line.
    fn line_start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.text.len())
    }

    /// The byte range to underline: the location's span cut to its first line, or one
    /// character when it has no length.
    ///
    /// The offset is trusted only when it agrees with the line; otherwise the span is
    /// found from line and column, so a location built without an offset still points
    /// at the right place.
    fn span(&self, location: &Location) -> Range<usize> {
        let text = self.text;
        let start = if location.offset <= text.len()
            && text.is_char_boundary(location.offset)
            && self.line_of(location.offset) + 1 == location.line as usize
        {
            location.offset
        } else {
            self.offset_of(location.line, location.column)
        };
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = if location.len == 0 {
            // A span at a line break underlines the break itself (one column past the end
            // of the line), which is where a missing value is.
            text[start..].chars().next().map_or(start, |c| start + c.len_utf8())
        } else {
            ceil_char_boundary(text, start.saturating_add(location.len).min(line_end))
        };
        start..end.max(start)
    }

    /// Where a location's whole span ends, as the 1-based line and the column just past
    /// its last character (the span may cross lines; a span without length covers one
    /// character, as underlined).
    pub(super) fn end(&self, location: &Location) -> (u32, u32) {
        let start = self.span(location).start;
        let end = if location.len == 0 {
            self.span(location).end
        } else {
            ceil_char_boundary(self.text, start.saturating_add(location.len))
        };
        // A span that takes in its line break ends on its own line, not at column 1 below.
        let end = if end > start && self.text[..end].ends_with('\n') { end - 1 } else { end };
        let line = self.line_of(end);
        let column = self.text[self.line_start(line)..end].chars().count() + 1;
        (u32::try_from(line + 1).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
    }

    /// The byte offset of a 1-based line and character column, clamped to the text.
    fn offset_of(&self, line: u32, column: u32) -> usize {
        let line = line.max(1) as usize - 1;
        if line >= self.starts.len() {
            return self.text.len();
        }
        let start = self.starts[line];
        let end = self.line_start(line + 1);
        let line_text = self.text[start..end].trim_end_matches('\n');
        let skip = column.max(1) as usize - 1;
        start + line_text.char_indices().nth(skip).map_or(line_text.len(), |(i, _)| i)
    }
}

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use budgit_engine::Code;
    use budgit_engine::load::{PolicySet, Source};

    use super::*;

    fn loc(file: &str, line: u32, column: u32, offset: usize, len: usize) -> Location {
        Location { file: file.into(), line, column, offset, len, commit: None }
    }

    fn set(files: &[(&str, &str)]) -> PolicySet {
        PolicySet {
            sources: files
                .iter()
                .map(|(path, text)| Source { path: Arc::from(*path), text: Arc::from(*text), commit: None })
                .collect(),
            ..PolicySet::default()
        }
    }

    fn show(policies: &PolicySet, diagnostics: Vec<Diagnostic>) -> String {
        let context = DiagContext { policies, root: Path::new("policies"), color: false };
        render(&context, &Report { diagnostics })
    }

    fn span(text: &str, location: &Location) -> Range<usize> {
        let policies = set(&[("f", text)]);
        let mut files = Files::new(&policies);
        let at = Location { file: "f".into(), ..location.clone() };
        files.get(&at).unwrap().span(&at)
    }

    #[test]
    fn spans_fall_back_to_line_and_column_and_stay_on_one_line() {
        let text = "a: 1\nbé: xyz\n";
        // Offset agrees with the line: used as is, cut at the line end.
        assert_eq!(span(text, &loc("f", 2, 5, 10, 100)), 10..13);
        // Offset 0 but line 2: found from line and column (column in characters).
        assert_eq!(span(text, &loc("f", 2, 5, 0, 3)), 10..13);
        // No length: one character.
        assert_eq!(span(text, &loc("f", 2, 1, 5, 0)), 5..6);
        assert_eq!(span(text, &loc("f", 2, 2, 6, 0)), 6..8);
        // Past the end: an empty span at the end, never a panic.
        assert_eq!(span(text, &loc("f", 9, 9, 999, 5)), text.len()..text.len());
        assert_eq!(span("", &loc("f", 1, 1, 0, 0)), 0..0);
    }

    #[test]
    fn renders_caret_label_secondary_and_help() {
        let policies = set(&[
            ("groups.yaml", "kind: Group\nname: eng\nlimit:\n  credit: 5\n"),
            ("more.yaml", "kind: Group\nname: eng\n"),
        ]);
        let d = Diagnostic::error(Code::NameDuplicate, "duplicate group name `eng`")
            .at(loc("more.yaml", 2, 7, 18, 3))
            .with_label("second definition")
            .with_secondary(loc("groups.yaml", 2, 7, 18, 3), "first defined here")
            .with_help("rename one of them");
        let out = show(&policies, vec![d]);
        assert!(out.contains("error[name/duplicate]: duplicate group name `eng`"), "{out}");
        assert!(out.contains("--> policies/more.yaml:2:7"), "{out}");
        assert!(out.contains("::: policies/groups.yaml:2:7"), "{out}");
        assert!(out.contains("^^^ second definition"), "{out}");
        assert!(out.contains("--- first defined here"), "{out}");
        assert!(out.contains("= help: rename one of them"), "{out}");
        assert!(out.ends_with("error: 1 error\n"), "{out}");
    }

    #[test]
    fn findings_without_place_or_text_render_without_snippet() {
        let policies = set(&[]);
        let empty = Diagnostic::error(Code::RepoEmpty, "no policy files found").with_help("add files");
        let binary = Diagnostic::error(Code::InputNotUtf8, "file is not UTF-8 text")
            .at(loc("blob.yaml", 1, 3, 2, 1))
            .with_label("here");
        let out = show(&policies, vec![empty, binary]);
        assert!(out.contains("error[repo/empty]: no policy files found\n |\n = help: add files"), "{out}");
        assert!(out.contains("--> policies/blob.yaml:1:3"), "{out}");
        assert!(out.contains("= note: here"), "{out}");
        assert!(out.ends_with("error: 2 errors\n"), "{out}");
    }

    #[test]
    fn summary_counts_files_and_documents_when_clean() {
        let policies = set(&[("a.yaml", "x: 1\n")]);
        assert_eq!(show(&policies, vec![]), "ok: 1 file, 0 documents, no findings\n");
        let w =
            Diagnostic::warning(Code::OverrideExpired, "override `x` expired").at(loc("a.yaml", 1, 1, 0, 1));
        assert!(show(&policies, vec![w]).ends_with("ok: 1 file, 0 documents, 1 warning\n"));
    }

    #[test]
    fn spans_at_the_end_of_a_file_render() {
        // The parser reports an unexpected end of input past the last line; with and
        // without a final newline, and in an empty file.
        for text in ["a: [1,\n", "a: [1,", ""] {
            let policies = set(&[("a.yaml", text)]);
            let at = loc("a.yaml", 2, 1, text.len(), 0);
            let past = loc("a.yaml", 40, 3, 999, 7);
            let d = Diagnostic::error(Code::YamlSyntax, "unexpected end of input")
                .at(at)
                .with_label("here")
                .with_secondary(past, "and here");
            let out = show(&policies, vec![d]);
            assert!(out.contains("--> policies/a.yaml:"), "{out}");
            assert!(out.contains("here"), "{out}");
        }
    }

    #[test]
    fn commit_is_part_of_the_path() {
        let mut policies = set(&[("a.yaml", "kind: Nope\n")]);
        policies.sources[0].commit = Some(Arc::from("0123456789abcdef0123"));
        let mut l = loc("a.yaml", 1, 7, 6, 4);
        l.commit = Some(Arc::from("0123456789abcdef0123"));
        let out =
            show(&policies, vec![Diagnostic::error(Code::SchemaUnknownKind, "unknown kind `Nope`").at(l)]);
        assert!(out.contains("--> 0123456789ab:policies/a.yaml:1:7"), "{out}");
        assert!(out.contains("^^^^"), "{out}");
    }

    #[test]
    fn colour_only_when_asked() {
        let policies = set(&[]);
        let d = vec![Diagnostic::error(Code::RepoEmpty, "no policy files found")];
        assert!(!show(&policies, d.clone()).contains('\u{1b}'));
        let context = DiagContext { policies: &policies, root: Path::new("p"), color: true };
        assert!(render(&context, &Report { diagnostics: d }).contains('\u{1b}'));
    }
}
