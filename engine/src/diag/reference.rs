//! The reference text of each diagnostic code, read from `docs/diagnostics.md`.
//!
//! The document is compiled in, so tools that describe a code (SARIF rules for
//! code scanning) show the same words as the reference and there is no second
//! copy to drift. A code's section runs from its `` ## `code` `` heading to the next
//! `## ` heading; it opens with `Severity: …`, followed by what the code means.

/// `docs/diagnostics.md`, as built.
const DOCUMENT: &str = include_str!("../../../docs/diagnostics.md");

/// What the reference says about one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeReference {
    /// The first sentence of the description: what is wrong, in one line.
    pub summary: String,
    /// The first paragraph, less its `Severity:` lead: what the code means.
    pub description: String,
    /// The whole section as plain text (Markdown emphasis, code marks and fences removed).
    pub text: String,
    /// The whole section as Markdown, without its heading.
    pub markdown: String,
}

/// The reference of a code, or `None` when `docs/diagnostics.md` has no heading for it.
pub fn reference(code: &str) -> Option<CodeReference> {
    let markdown = section(DOCUMENT, code)?;
    let description = description(markdown);
    Some(CodeReference {
        summary: first_sentence(&description),
        description,
        text: plain(markdown),
        markdown: markdown.to_owned(),
    })
}

/// Every code with a heading, in document order.
pub fn documented_codes() -> Vec<&'static str> {
    DOCUMENT.lines().filter_map(heading_code).collect()
}

/// The code of a `` ## `code` `` heading line.
fn heading_code(line: &str) -> Option<&str> {
    line.strip_prefix("## ")?.trim().strip_prefix('`')?.strip_suffix('`')
}

/// The body of a code's section, trimmed.
fn section<'a>(document: &'a str, code: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in document.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        if line.starts_with("## ") {
            if let Some(start) = start {
                return Some(document[start..here].trim());
            }
            if heading_code(line.trim_end()) == Some(code) {
                start = Some(offset);
            }
        }
    }
    start.map(|start| document[start..].trim())
}

/// The first paragraph joined into one line, without its `Severity: <level>.` lead.
fn description(markdown: &str) -> String {
    let paragraph = markdown.split("\n\n").next().unwrap_or_default();
    let joined = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.strip_prefix("Severity:") {
        // The lead is one short sentence ("Severity: error." or "Severity: warning (error
        // with `--strict`)."): drop through its period.
        Some(rest) => rest.split_once(". ").map_or(rest, |(_, after)| after).trim().to_owned(),
        None => joined,
    }
}

/// Up to and including the first full stop that ends a sentence (followed by a space
/// and a capital letter, or the end of the text).
fn first_sentence(text: &str) -> String {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(". ") {
        if bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase) {
            return text[..=i].to_owned();
        }
    }
    text.to_owned()
}

/// Markdown as plain text: fences and emphasis marks dropped, code marks removed.
fn plain(markdown: &str) -> String {
    markdown
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .map(|line| line.replace("**", "").replace('`', ""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_cut_at_the_next_heading() {
        let document = "# Title\n\n## `a/one`\n\nSeverity: error. First. Second `x`.\n\nMore.\n\n\
                        ## `a/two`\n\nSeverity: warning. Only e.g. this\nline.\n";
        assert_eq!(section(document, "a/one"), Some("Severity: error. First. Second `x`.\n\nMore."));
        let two = section(document, "a/two").unwrap();
        assert_eq!(two, "Severity: warning. Only e.g. this\nline.");
        assert_eq!(description(two), "Only e.g. this line.");
        assert_eq!(first_sentence(&description(two)), "Only e.g. this line.");
        assert_eq!(first_sentence("First. Second."), "First.");
        assert_eq!(section(document, "a/three"), None);
    }

    #[test]
    fn every_documented_code_has_a_summary_and_a_description() {
        let codes = documented_codes();
        assert!(codes.len() > 30, "{codes:?}");
        for code in codes {
            let r = reference(code).unwrap();
            assert!(!r.summary.is_empty() && r.summary.len() <= r.description.len(), "{code}: {r:?}");
            assert!(!r.description.starts_with("Severity"), "{code}: {r:?}");
            assert!(r.markdown.contains("**Fix**") && !r.text.contains("**"), "{code}");
        }
        let r = reference("input/too-large").unwrap();
        assert_eq!(r.summary, "A policy file is larger than 1 MiB.");
        assert!(r.description.ends_with("so a huge or endless file costs nothing."), "{r:?}");
        assert!(r.text.contains("error[input/too-large] generated.yaml:1:1"), "{}", r.text);
    }
}
