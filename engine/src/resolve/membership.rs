//! Group membership: which users each group holds, from `members`, `selector` and `exclude`.
//!
//! A user is in a group when listed in `members`, or when the selector is true and
//! the user is not in `exclude`. Selectors are compiled once per group and
//! evaluated in bulk by [`crate::select`]; this module only combines the
//! results with the explicit lists.

use crate::directory::Directory;
use crate::load::PolicySet;
use crate::model::Group;
use crate::select::{self, Selector};

/// A fixed-size set of user positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// An empty set able to hold positions `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        BitSet { words: vec![0; len.div_ceil(64)] }
    }

    /// A set from its words, 64 positions each, lowest bit first.
    pub(crate) fn from_words(words: &[u64]) -> Self {
        BitSet { words: words.to_vec() }
    }

    pub(crate) fn insert(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Number of positions in the set.
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Calls `f` with every position in the set, in increasing order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize)) {
        for (wi, &word) in self.words.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                let bit = w.trailing_zeros() as usize;
                f(wi * 64 + bit);
                w &= w - 1;
            }
        }
    }
}

/// What a group's selector says about the users.
#[derive(Debug, Clone)]
pub(crate) enum Selection {
    /// The group has no selector: only listed members belong.
    None,
    /// The users for whom the selector is true, and those it failed on (no match).
    Users {
        /// The users it selected.
        bits: BitSet,
        /// Positions of the users it could not be evaluated for, sorted.
        errors: Vec<usize>,
    },
    /// The selector could not be compiled (validation reports it); it selects nobody.
    Error(String),
}

/// One group's membership, with what explains it.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    /// Positions listed in `members` (sorted, unique; emails not in the directory dropped).
    pub listed: Vec<usize>,
    /// What the selector says.
    pub selection: Selection,
    /// The final membership.
    pub all: BitSet,
}

impl Members {
    /// True when the user is listed in `members`.
    pub(crate) fn is_listed(&self, user: usize) -> bool {
        self.listed.binary_search(&user).is_ok()
    }
}

/// Directory positions of the emails, sorted and unique.
fn positions(dir: &Directory, emails: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = emails.iter().filter_map(|e| dir.position(e)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn combine(dir: &Directory, group: &Group, selection: Selection) -> Members {
    let listed = positions(dir, &group.members);
    let excluded = positions(dir, &group.exclude);
    let mut all = match &selection {
        Selection::Users { bits, .. } => bits.clone(),
        Selection::None | Selection::Error(_) => BitSet::new(dir.len()),
    };
    for &u in &excluded {
        all.remove(u);
    }
    for &u in &listed {
        all.insert(u);
    }
    Members { listed, selection, all }
}

/// Evaluates every group's membership over the whole directory.
///
/// Each selector is compiled once, and all of them are evaluated in bulk over one
/// shared directory index by [`select::matches_all`] (which runs any CEL work on a
/// thread with a large stack).
pub(crate) fn all_groups(policies: &PolicySet, dir: &Directory) -> Vec<Members> {
    /// A group's selector after compiling: none, an error, or a position in `selectors`.
    enum Compiled {
        None,
        Error(String),
        At(usize),
    }
    let mut selectors = Vec::new();
    let mut compiled_all = Selector::compile_all(
        policies.groups.iter().filter_map(|g| g.doc.selector.as_deref()),
        &dir.attributes,
    )
    .into_iter();
    let compiled: Vec<Compiled> = policies
        .groups
        .iter()
        .map(|g| match g.doc.selector.as_ref().map(|_| compiled_all.next()) {
            None => Compiled::None,
            Some(None) => Compiled::Error("the selector was not compiled".into()),
            Some(Some(Err(e))) => Compiled::Error(e.to_string()),
            Some(Some(Ok(s))) => {
                selectors.push(s);
                Compiled::At(selectors.len() - 1)
            }
        })
        .collect();
    let results = select::matches_all(&selectors, dir);
    policies
        .groups
        .iter()
        .zip(compiled)
        .map(|(g, c)| {
            let selection = match c {
                Compiled::None => Selection::None,
                Compiled::Error(e) => Selection::Error(e),
                Compiled::At(i) => match results.get(i) {
                    Some(m) => {
                        Selection::Users { bits: BitSet::from_words(m.words()), errors: m.errors().to_vec() }
                    }
                    None => Selection::Error("the selector was not evaluated".into()),
                },
            };
            combine(dir, &g.doc, selection)
        })
        .collect()
}

/// What a selector says about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserSelection {
    /// The group has no selector.
    None,
    /// The selector's value for the user.
    Value(bool),
    /// The selector could not be compiled or evaluated for the user.
    Error(String),
}

/// Evaluates every group's selector for one user, through the interpreter.
pub(crate) fn one_user(policies: &PolicySet, dir: &Directory, user: usize) -> Vec<UserSelection> {
    policies
        .groups
        .iter()
        .map(|g| match &g.doc.selector {
            None => UserSelection::None,
            Some(expr) => {
                match Selector::compile(expr, &dir.attributes).and_then(|s| s.matches_user(dir, user)) {
                    Ok(v) => UserSelection::Value(v),
                    Err(e) => UserSelection::Error(e.to_string()),
                }
            }
        })
        .collect()
}
