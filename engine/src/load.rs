//! Loading policies: files (or a git tree) → YAML nodes with spans → typed documents.
//!
//! Loading collects every finding it can (a broken file never hides the others)
//! and keeps, beside each typed document, the YAML node it came from so later
//! stages can point at any field. It does not check meaning across documents:
//! that is [`crate::validate`].

pub mod files;
pub mod git;
pub mod yaml;

use std::sync::Arc;

use crate::diag::{Code, Diagnostic, Location};
use crate::model::{Document, Group, Guardrail, Kind, Override, Workspace};
use yaml::{Node, Value};

/// Largest policy file read, in bytes. Real policy files are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// One policy file's text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path relative to the policy root, `/`-separated.
    pub path: Arc<str>,
    /// The file's text.
    pub text: Arc<str>,
    /// The commit it was read from, when read from git.
    pub commit: Option<Arc<str>>,
}

/// A typed document with the YAML node and file it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The typed document.
    pub doc: T,
    /// The document's YAML, for pointing at fields.
    pub node: Arc<Node>,
    /// The file, relative to the policy root.
    pub file: Arc<str>,
    /// The commit, when read from git.
    pub commit: Option<Arc<str>>,
}

impl<T> Loaded<T> {
    /// The location of the node at a JSON pointer (`""` is the document, `/limit/credits` a field);
    /// when it is absent, the nearest existing parent.
    pub fn loc(&self, pointer: &str) -> Location {
        node_location(&self.file, self.commit.as_ref(), self.node.nearest(pointer))
    }

    /// The location of the key of a top-level field, or of the document when absent.
    pub fn key_loc(&self, key: &str) -> Location {
        match self.node.key(key) {
            Some(k) => node_location(&self.file, self.commit.as_ref(), k),
            None => self.loc(""),
        }
    }

    /// The document's location (its first key).
    pub fn doc_loc(&self) -> Location {
        self.key_loc("kind")
    }
}

/// The location of a node.
pub fn node_location(file: &Arc<str>, commit: Option<&Arc<str>>, node: &Node) -> Location {
    Location {
        file: file.clone(),
        line: node.pos.line.max(1),
        column: node.pos.column.max(1),
        offset: node.pos.offset,
        len: node.pos.len,
        commit: commit.cloned(),
    }
}

/// Every document of a policy repository, by kind, in file order.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// The files read, in path order.
    pub sources: Vec<Source>,
    /// Every `Workspace` document (a valid repository has exactly one).
    pub workspaces: Vec<Loaded<Workspace>>,
    /// Every `Group`.
    pub groups: Vec<Loaded<Group>>,
    /// Every `Override`.
    pub overrides: Vec<Loaded<Override>>,
    /// Every `Guardrail`.
    pub guardrails: Vec<Loaded<Guardrail>>,
}

impl PolicySet {
    /// The workspace, when there is exactly one.
    pub fn workspace(&self) -> Option<&Loaded<Workspace>> {
        match self.workspaces.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.workspaces.len() + self.groups.len() + self.overrides.len() + self.guardrails.len()
    }

    /// True when there is no document at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source text of a file, for rendering snippets.
    pub fn source(&self, path: &str) -> Option<&Source> {
        self.sources.iter().find(|s| &*s.path == path)
    }
}

/// A document of a known kind that failed the schema: left out of the [`PolicySet`],
/// kept so the checks that need only some of its fields (a selector, a rule) still
/// report their findings in the same run.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The document's kind.
    pub kind: Kind,
    /// Byte offsets of the schema findings about it.
    findings_at: Vec<usize>,
    /// The document without its unknown top-level fields, when those were its only
    /// findings: the checks across documents can then run on it as on any other.
    pub repaired: Option<Document>,
}

impl Loaded<Rejected> {
    /// The text of a top-level string field that no schema finding points into.
    pub fn clean_str(&self, key: &str) -> Option<&str> {
        let node = self.node.get(key)?;
        let start = node.pos.offset;
        let end = start + node.pos.len.max(1);
        if self.doc.findings_at.iter().any(|at| (start..end).contains(at)) {
            return None;
        }
        node.as_str()
    }

    /// The texts of a top-level list of strings, with their positions, leaving out
    /// the items a schema finding points into (a list that is not a list gives none).
    pub fn clean_strs(&self, key: &str) -> Vec<(usize, &str)> {
        let Some(Node { value: Value::Seq(items), .. }) = self.node.get(key) else { return Vec::new() };
        items
            .iter()
            .enumerate()
            .filter(|(_, item)| {
                let start = item.pos.offset;
                let end = start + item.pos.len.max(1);
                !self.doc.findings_at.iter().any(|at| (start..end).contains(at))
            })
            .filter_map(|(i, item)| item.as_str().map(|s| (i, s)))
            .collect()
    }
}

/// Parses sources into typed documents, collecting every finding.
///
/// Parsing, kind dispatch, JSON Schema and typed deserialization happen here;
/// a document that fails any of them is left out of the set (and reported).
/// Run it on a thread with a large stack ([`crate::stack`]): deep YAML recurses.
pub fn load_sources(sources: Vec<Source>) -> (PolicySet, Vec<Diagnostic>) {
    let (set, _, diagnostics) = load_sources_keeping_rejected(sources);
    (set, diagnostics)
}

/// [`load_sources`], also returning the documents of a known kind that failed the
/// schema or typed deserialization, for validation to check what it still can.
pub fn load_sources_keeping_rejected(
    sources: Vec<Source>,
) -> (PolicySet, Vec<Loaded<Rejected>>, Vec<Diagnostic>) {
    let mut set = PolicySet::default();
    let mut rejected = Vec::new();
    let mut diagnostics = Vec::new();
    for source in &sources {
        load_source(source, &mut set, &mut rejected, &mut diagnostics);
    }
    set.sources = sources;
    (set, rejected, diagnostics)
}

fn load_source(
    source: &Source,
    set: &mut PolicySet,
    rejected: &mut Vec<Loaded<Rejected>>,
    out: &mut Vec<Diagnostic>,
) {
    let file = &source.path;
    let commit = source.commit.as_ref();
    let nodes = match yaml::parse_documents(file, &source.text) {
        Ok(nodes) => nodes,
        Err(mut d) => {
            if let Some(l) = d.location.as_mut() {
                l.commit = commit.cloned();
            }
            out.push(d);
            return;
        }
    };
    for node in nodes {
        let loc = node_location(file, commit, &node);
        if !matches!(node.value, Value::Map(_)) {
            out.push(
                Diagnostic::error(
                    Code::SchemaNotADocument,
                    format!("expected a policy document, found {}", node.type_name()),
                )
                .at(loc)
                .with_help("a policy document is a mapping with `apiVersion: budgit/v1` and a `kind`"),
            );
            continue;
        }
        let Some(kind_node) = node.get("kind") else {
            out.push(
                Diagnostic::error(Code::SchemaMissingKind, "document has no `kind`")
                    .at(loc)
                    .with_help("add `kind: Workspace`, `Group`, `Override` or `Guardrail`"),
            );
            continue;
        };
        let kind_loc = node_location(file, commit, kind_node);
        let Some(kind) = kind_node.as_str().and_then(Kind::parse) else {
            let written = kind_node.scalar_text();
            let mut d = Diagnostic::error(Code::SchemaUnknownKind, format!("unknown kind `{written}`"))
                .at(kind_loc)
                .with_label("not a kind of document");
            d = match crate::diag::did_you_mean(&written, Kind::ALL.iter().map(|k| k.as_str())) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("the kinds are `Workspace`, `Group`, `Override` and `Guardrail`"),
            };
            out.push(d);
            continue;
        };
        let json = node.to_json();
        let findings = crate::validate::schema::check(kind, &json, &node, file, commit);
        let keep = |node: Node, findings: &[Diagnostic], rejected: &mut Vec<Loaded<Rejected>>| {
            let findings_at: Vec<usize> =
                findings.iter().filter_map(|d| d.location.as_ref().map(|l| l.offset)).collect();
            let repaired = without_unknown_fields(kind, &node, findings, file, commit);
            rejected.push(Loaded {
                doc: Rejected { kind, findings_at, repaired },
                node: Arc::new(node),
                file: file.clone(),
                commit: commit.cloned(),
            });
        };
        if !findings.is_empty() {
            keep(node, &findings, rejected);
            out.extend(findings);
            continue;
        }
        match Document::from_json(kind, json) {
            Ok(doc) => push_document(set, doc, Arc::new(node), file, commit),
            Err(e) => {
                let d = Diagnostic::error(Code::SchemaInvalid, yaml::lowercase_first(&e.to_string())).at(loc);
                keep(node, std::slice::from_ref(&d), rejected);
                out.push(d);
            }
        }
    }
}

/// Puts a person's key in its canonical form, the one the directory and usage use, so
/// that every later stage matches people by plain string equality. A key with hidden
/// characters is kept as written: it matches nobody, and validation reports it
/// (`identity/hidden-character`), as it reports any key not written canonically; the
/// YAML node keeps the text as written for that.
fn canonicalise(email: &mut String) {
    if let Ok(c) = crate::identity::canonical(email)
        && *c != **email
    {
        *email = c.into_owned();
    }
}

/// The typed document without the top-level fields the schema does not know, when
/// unknown top-level fields are all that is wrong with it.
fn without_unknown_fields(
    kind: Kind,
    node: &Node,
    findings: &[Diagnostic],
    file: &Arc<str>,
    commit: Option<&Arc<str>>,
) -> Option<Document> {
    let Value::Map(entries) = &node.value else { return None };
    let mut unknown = Vec::new();
    for d in findings {
        let at = d.location.as_ref()?.offset;
        let key = entries.iter().find(|(k, _)| k.pos.offset == at).and_then(|(k, _)| k.as_str());
        match key {
            Some(key) if d.code == Code::SchemaUnknownField => unknown.push(key),
            _ => return None,
        }
    }
    let mut json = node.to_json();
    let object = json.as_object_mut()?;
    for key in unknown {
        object.remove(key);
    }
    if !crate::validate::schema::check(kind, &json, node, file, commit).is_empty() {
        return None;
    }
    Document::from_json(kind, json).ok()
}

/// Adds a typed document to the set of its kind.
pub(crate) fn push_document(
    set: &mut PolicySet,
    doc: Document,
    node: Arc<Node>,
    file: &Arc<str>,
    commit: Option<&Arc<str>>,
) {
    let file = file.clone();
    let commit = commit.cloned();
    match doc {
        Document::Workspace(doc) => set.workspaces.push(Loaded { doc, node, file, commit }),
        Document::Group(mut doc) => {
            doc.members.iter_mut().chain(doc.exclude.iter_mut()).for_each(canonicalise);
            set.groups.push(Loaded { doc, node, file, commit })
        }
        Document::Override(mut doc) => {
            canonicalise(&mut doc.user);
            set.overrides.push(Loaded { doc, node, file, commit })
        }
        Document::Guardrail(doc) => set.guardrails.push(Loaded { doc, node, file, commit }),
    }
}
